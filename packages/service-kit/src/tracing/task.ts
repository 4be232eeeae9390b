import { newTraceId } from './ids.js';
import { activeRuntime, currentScope, runInScope, UnsampledTrace } from './runtime.js';
import { samplingDecision } from './sampling.js';

/**
 * Runs `work` as a segment of its own when it does not already run inside an open one: background work
 * (an outbox sending e-mails after the request that queued them has been answered, a poll timer) would
 * otherwise make its calls and queries with no trace to join, or join a request that is already closed.
 * The segment carries the service's segment name (so the service map shows the calls) and a `task`
 * annotation; the SDK's sampling rules decide as for a request to `/<task>`. With tracing off, or inside
 * an open segment, it just runs `work`.
 */
export async function traceTask<T>(task: string, work: () => Promise<T>): Promise<T> {
  const runtime = activeRuntime();
  if (!runtime || currentScope()) return work();

  const { sdk } = runtime;
  const decision = samplingDecision(sdk, {}, () => ({ host: 'task', httpMethod: 'TASK', urlPath: `/${task}`, serviceName: runtime.segmentName }));
  if (decision === false) return runInScope(new UnsampledTrace(), work);
  const segment = runtime.newSegment(runtime.segmentName, newTraceId(), undefined);
  if (typeof decision === 'string') segment.ruleName = decision;
  segment.annotations = { task };
  return runInScope(segment, async () => {
    try {
      const result = await work();
      segment.close();
      return result;
    } catch (err) {
      segment.close(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  });
}
