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

/**
 * Root, Parent and Sampled of an `X-Amzn-Trace-Id` value (`Root=1-...;Parent=...;Sampled=1`), keys in any case and
 * order, as the SDK reads them; other fields (`Self`, custom data) are left out, as nothing here passes them on.
 * A header sent twice counts once, the first.
 */
export function parseTraceHeader(value: string | string[] | undefined): IncomingTraceHeader {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return noHeader;
  const header: IncomingTraceHeader = {};
  for (const field of text.split(';')) {
    const equals = field.indexOf('=');
    if (equals <= 0) continue;
    const key = field.slice(0, equals).trim().toLowerCase();
    const fieldValue = field.slice(equals + 1).trim();
    if (!fieldValue) continue;
    if (key === 'root') header.root = fieldValue;
    else if (key === 'parent') header.parent = fieldValue;
    else if (key === 'sampled') header.sampled = fieldValue;
  }
  return header;
}

/**
 * The sampling decision for a request, taken before any segment exists so an unsampled request costs no
 * segment: the caller's when its header says `Sampled=1` or `Sampled=0`, otherwise the SDK's sampler (the
 * daemon's centralized rules, or the local ones). `true`/`false`, or the name of the rule that sampled it.
 */
export function samplingDecision(sdk: XraySdk, header: IncomingTraceHeader, request: SampleRequest): boolean | string {
  if (header.sampled === '1') return true;
  if (header.sampled === '0') return false;
  return (sdk.middleware as unknown as MiddlewareSampler).sampler.shouldSample(request);
}
