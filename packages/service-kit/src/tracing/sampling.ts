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

/** The fields of an incoming X-Amzn-Trace-Id that decide how a request joins its trace. */
export interface IncomingTraceHeader {
  root?: string;
  parent?: string;
  sampled?: string;
}

const noHeader: IncomingTraceHeader = {};

const canonicalHeader = /^Root=(1-[0-9a-f]{8}-[0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01])$/;

/**
 * Root, Parent and Sampled of an `X-Amzn-Trace-Id` value (`Root=1-...;Parent=...;Sampled=1`), keys in any case and
 * order, as the SDK reads them; other fields (`Self`, custom data) are left out, as nothing here passes them on.
 * A header sent twice counts once, the first. Scanned in place: every request of a traced service pays for it.
 */
export function parseTraceHeader(value: string | string[] | undefined): IncomingTraceHeader {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return noHeader;
  // What X-Ray's SDKs and this kit send, in one match; anything else is read field by field.
  const canonical = canonicalHeader.exec(text);
  if (canonical) return { root: canonical[1], parent: canonical[2], sampled: canonical[3] };
  const header: IncomingTraceHeader = {};
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf(';', start);
    if (end < 0) end = text.length;
    const equals = text.indexOf('=', start);
    if (equals > start && equals < end) {
      const key = text.slice(start, equals).trim();
      // Only the three keys are worth lower-casing.
      const name = key.length === 4 || key.length === 6 || key.length === 7 ? key.toLowerCase() : '';
      const fieldValue = name ? text.slice(equals + 1, end).trim() : '';
      if (fieldValue) {
        if (name === 'root') header.root = fieldValue;
        else if (name === 'parent') header.parent = fieldValue;
        else if (name === 'sampled') header.sampled = fieldValue;
      }
    }
    start = end + 1;
  }
  return header;
}

/**
 * The sampling decision for a request, taken before any segment exists so an unsampled request costs no
 * segment: the caller's when its header says `Sampled=1` or `Sampled=0`, otherwise the SDK's sampler (the
 * daemon's centralized rules, or the local ones). `true`/`false`, or the name of the rule that sampled it. The
 * request's description is made only when the sampler is asked.
 */
export function samplingDecision(sdk: XraySdk, header: IncomingTraceHeader, request: () => SampleRequest): boolean | string {
  if (header.sampled === '1') return true;
  if (header.sampled === '0') return false;
  return (sdk.middleware as unknown as MiddlewareSampler).sampler.shouldSample(request());
}
