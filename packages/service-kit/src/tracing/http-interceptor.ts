import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { Dispatcher as UndiciDispatcher } from '../undici-dispatcher.js';
import { activeRuntime, currentScope, reportMissingContext, UnsampledTrace } from './runtime.js';
import type { TraceSubsegment } from './segment.js';

const traceHeader = 'x-amzn-trace-id';

export interface XrayHttpOptions {
  /**
   * The downstream's origin (`http://host:port`) for calls whose dispatch options carry none, as when a
   * `Pool` or `BalancedPool` is called with a path only. It names the subsegment (its host) and the URL.
   */
  origin?: string | URL;
}

export interface TraceDispatcherOptions extends XrayHttpOptions {
  /** false returns the dispatcher itself: no interceptor, no cost (AWS_XRAY_SDK_ENABLED=false). */
  enabled: boolean;
}

/** The caller's headers plus ours, in the form undici was given, without changing the caller's object. */
function withTraceHeader(headers: Dispatcher.DispatchOptions['headers'], value: string): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return { [traceHeader]: value };
  if (Array.isArray(headers)) {
    const flat: string[] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() !== traceHeader) flat.push(headers[i] as string, headers[i + 1] as string);
    }
    return [...flat, traceHeader, value];
  }
  const result: Record<string, string | string[]> = {};
  if (Symbol.iterator in headers) {
    for (const [name, headerValue] of headers as Iterable<[string, string | string[] | undefined]>) {
      if (headerValue !== undefined && name.toLowerCase() !== traceHeader) result[name] = headerValue;
    }
  } else {
    // A plain object, as most callers pass: copied key by key, with no array of entries in between.
    const plain = headers as IncomingHttpHeaders;
    for (const name in plain) {
      const headerValue = plain[name];
      if (headerValue !== undefined && (name.length !== traceHeader.length || name.toLowerCase() !== traceHeader)) result[name] = headerValue;
    }
  }
  result[traceHeader] = value;
  return result;
}

/** What a subsegment records of the URL called: its host (the subsegment's name) and the whole URL. */
interface CalledUrl {
  hostname: string;
  href: string;
}

/**
 * Resolved URLs by origin and path. A service calls the same few URLs over and over, and parsing one cost a sampled
 * call in user management about 2.5 µs, a tenth of what tracing it costs; past `maxCachedUrls` distinct ones
 * (paths that carry ids) the cache starts again rather than grow.
 */
const calledUrls = new Map<string, CalledUrl | null>();
const maxCachedUrls = 256;

function requestUrl(opts: Dispatcher.DispatchOptions, fallback: string | URL | undefined): CalledUrl | undefined {
  const origin = opts.origin ?? fallback;
  if (origin === undefined) return undefined;
  const key = `${String(origin)}\n${opts.path}`;
  let url = calledUrls.get(key);
  if (url === undefined) {
    try {
      const called = new URL(opts.path, origin);
      // Without the query string, as the SDK records calls: it can carry tokens or personal data.
      called.search = '';
      url = { hostname: called.hostname, href: called.href };
    } catch {
      url = null;
    }
    if (calledUrls.size >= maxCachedUrls) calledUrls.clear();
    calledUrls.set(key, url);
  }
  return url ?? undefined;
}

/**
 * Passes undici's callbacks on and, on the way, fills the subsegment with the response and closes it:
 * at the end of the body, or on failure with the error.
 */
class SubsegmentHandler implements Dispatcher.DispatchHandler {
  #status = 0;
  #contentLength: number | undefined;
  #received = 0;
  #closed = false;
  #reached = false;

  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly subsegment: TraceSubsegment,
    private readonly request: { url: string; method: string },
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    // undici starts a request only on a connected socket: from here the downstream may record a segment.
    this.#reached = true;
    this.handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: import('node:stream').Duplex): void {
    this.#close(statusCode);
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode >= 200) {
      this.#status = statusCode;
      const length = Number(headers['content-length']);
      this.#contentLength = Number.isSafeInteger(length) ? length : undefined;
    }
    this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
    this.handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.#close(this.#status);
    this.handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.#close(this.#status, error);
    this.handler.onResponseError?.(controller, error);
  }

  #close(status: number, error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    const sub = this.subsegment;
    // `traced` tells X-Ray to wait for the downstream's segment: a call refused or timed out before it was sent
    // has none, and marked traced it would leave the trace looking broken for good (the SDK leaves it out too).
    const traced = this.#reached || status > 0;
    const request = { url: this.request.url, method: this.request.method, ...(traced ? { traced } : {}) };
    sub.http = status > 0 ? { request, response: { status, content_length: this.#contentLength ?? this.#received } } : { request };
    sub.flagStatus(status);
    // A refused, reset or timed-out call has no status: it is a fault, with the error as its cause.
    sub.close(error);
  }
}

/**
 * An undici interceptor (`dispatcher.compose(xrayHttpInterceptor())`) making every call a remote
 * subsegment of the current X-Ray (sub)segment, named after the downstream host, with
 * `http.request {url, method, traced: true}` (`traced` only once the request went out on a connection),
 * `http.response {status, content_length}`, flags by status
 * and the error on failure; the call carries `X-Amzn-Trace-Id: Root=<trace>;Parent=<subsegment>;Sampled=<0|1>`
 * so the downstream's segment joins the trace as its child.
 *
 * The context is only read, never set, so the caller keeps its own segment after the call (unlike
 * aws-xray-sdk-fetch, XRAY-NODE-FACTS §3). The subsegment closes when the body has been read to its end
 * or the call fails, as undici requires every body to be consumed or destroyed anyway. A call outside any
 * open segment (background work not wrapped in `traceTask`, work left running after the response) goes out
 * untraced, reported as AWS_XRAY_CONTEXT_MISSING says.
 * Composed outside a retry interceptor it records one subsegment per call; inside, one per attempt.
 */
export function xrayHttpInterceptor(options: XrayHttpOptions = {}): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) =>
    function tracedDispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const runtime = activeRuntime();
      if (!runtime) return dispatch(opts, handler);
      const parent = currentScope();
      if (!parent) {
        // Outside a request and outside traceTask (or after the response): nothing to join.
        reportMissingContext(runtime, `${opts.method ?? 'GET'} ${opts.path}`);
        return dispatch(opts, handler);
      }
      if (parent instanceof UnsampledTrace) {
        // No subsegment to name as Parent; the downstream needs only the trace and the decision to leave it out.
        return dispatch({ ...opts, headers: withTraceHeader(opts.headers, `Root=${parent.traceId};Sampled=0`) }, handler);
      }

      const url = requestUrl(opts, options.origin);
      const method = opts.method ?? 'GET';
      const sub = parent.addSubsegment(url?.hostname ?? 'http');
      sub.namespace = 'remote';
      const header = `Root=${parent.segment.traceId};Parent=${sub.id};Sampled=1`;
      const traced = new SubsegmentHandler(handler, sub, { url: url?.href ?? opts.path.split('?')[0] ?? '', method });
      try {
        return dispatch({ ...opts, headers: withTraceHeader(opts.headers, header) }, traced);
      } catch (err) {
        sub.close(err as Error);
        throw err;
      }
    };
}

/**
 * `dispatcher` (a Pool, Agent, BalancedPool or Client of the `undici` package) with every call traced by
 * `xrayHttpInterceptor`, or `dispatcher` itself when tracing is off.
 *
 * To trace `fetch()` and undici's top-level `request()`, make a traced Agent the global dispatcher:
 * `setGlobalDispatcher(traceDispatcher(new Agent(), options))`. Wrapping `getGlobalDispatcher()` instead fails:
 * on Node 22 and later that returns Node's own copy of undici (the one behind its `fetch`), whose major version
 * need not be ours: on Node 22 and 26 calls through it failed or never answered. So a dispatcher from another
 * copy of undici is refused here, at start, with this advice, whichever Node runs.
 */
export function traceDispatcher(dispatcher: Dispatcher, options: TraceDispatcherOptions): Dispatcher {
  if (!options.enabled) return dispatcher;
  if (!(dispatcher instanceof UndiciDispatcher)) {
    throw new TypeError(
      "traceDispatcher needs a dispatcher made by the 'undici' package (Pool, Agent, BalancedPool, Client); this one " +
        "comes from another copy of undici, such as Node's own, which getGlobalDispatcher() returns on Node 22 and later. " +
        'To trace fetch() and top-level undici calls: setGlobalDispatcher(traceDispatcher(new Agent(), options)).',
    );
  }
  return dispatcher.compose(xrayHttpInterceptor(options));
}
