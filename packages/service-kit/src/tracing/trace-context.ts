import { activeRuntime, currentScope, UnsampledTrace } from './runtime.js';

export interface TraceContext {
  /** `1-<epoch hex>-<24 hex>`, the X-Ray trace this code runs in. */
  traceId: string;
  /** The id of the current segment or subsegment; none in an unsampled trace, which has no segment. */
  id?: string;
  /** Whether the trace is sampled (sent to X-Ray). */
  sampled: boolean;
}

/**
 * The X-Ray trace this code runs in (a request's segment, or a `traceTask`'s), or undefined when tracing is
 * off or there is none; for log correlation. The SDK's own `getSegment()` does not work here: the kit keeps
 * the context itself and runs the SDK in manual mode.
 */
export function traceContext(): TraceContext | undefined {
  const runtime = activeRuntime();
  const scope = currentScope();
  if (!runtime || !scope) return undefined;
  if (scope instanceof UnsampledTrace) return { traceId: scope.traceId, sampled: false };
  return { traceId: scope.segment.traceId, id: scope.id, sampled: true };
}
