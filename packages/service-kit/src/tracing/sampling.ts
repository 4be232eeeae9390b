import type { XraySdk } from './runtime.js';

/** What the SDK's sampler is asked about a request; its rules match on these. */
export interface SampleRequest {
  host: string | undefined;
  httpMethod: string | undefined;
  urlPath: string | undefined;
  serviceName: string;
}

/** The sampler behind `sdk.middleware`, which its typings leave out: centralized rules with local fallback. */
interface MiddlewareSampler {
  sampler: { shouldSample(request: SampleRequest): boolean | string };
}

/** The sampling field of an incoming X-Amzn-Trace-Id, as the SDK's `processHeaders` parses it. */
export interface IncomingTraceHeader {
  root?: string;
  parent?: string;
  sampled?: string;
}

/**
 * The sampling decision for a request, taken before any segment exists so an unsampled request costs no SDK
 * objects: the caller's when its header says `Sampled=1` or `Sampled=0`, otherwise the SDK's sampler (the
 * daemon's centralized rules, or the local ones). `true`/`false`, or the name of the rule that sampled it.
 */
export function samplingDecision(sdk: XraySdk, header: IncomingTraceHeader, request: SampleRequest): boolean | string {
  if (header.sampled === '1') return true;
  if (header.sampled === '0') return false;
  return (sdk.middleware as unknown as MiddlewareSampler).sampler.shouldSample(request);
}

const traceIdPattern = /^1-[0-9a-f]{8}-[0-9a-f]{24}$/;

/** The caller's trace id when it is a well-formed X-Ray one; anything else starts a new trace, as the SDK does. */
export function validTraceId(root: string | undefined): string | undefined {
  return root !== undefined && traceIdPattern.test(root) ? root : undefined;
}
