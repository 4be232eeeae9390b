import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { XrayTracingOptions } from './options.js';
import { acquireRuntime, releaseRuntime, runInScope, UnsampledTrace, type Segment, type TraceScope, type XraySdk } from './runtime.js';
import { samplingDecision, validTraceId, type IncomingTraceHeader } from './sampling.js';

/** `Segment#http` holds the IncomingRequestData the SDK's `addIncomingRequestData` stored; its type omits it. */
interface SegmentHttp {
  http?: { close(res: ServerResponse): void; response?: { content_length?: number } };
}

/**
 * Opens the segment of one sampled incoming request with the SDK's middleware utilities and closes it once the
 * response is finished (or the connection closed). `failure()` returns the error fastify handled for this
 * request, recorded as the cause when the status is 5xx.
 */
function traceRequest(
  sdk: XraySdk,
  name: string,
  header: IncomingTraceHeader,
  rule: string | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  reply: { getHeader(name: string): unknown },
  failure: () => Error | undefined,
): Segment {
  const mw = sdk.middleware;
  // The name is ours, not the SDK's process-wide default, so two apps in one process keep their own.
  const segment = new sdk.Segment(name, header.root, header.parent);
  if (rule !== undefined) segment.setMatchedSamplingRule(rule);
  segment.addIncomingRequestData(new mw.IncomingRequestData(req));

  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    const status = res.statusCode;
    if (status === 429) segment.addThrottleFlag();
    const cause = sdk.utils.getCauseTypeFromHttpStatus(status);
    if (cause === 'error') segment.addErrorFlag();
    if (cause === 'fault') {
      const err = failure();
      if (err) segment.addError(err);
      else segment.addFaultFlag();
    }
    const http = (segment as Segment & SegmentHttp).http;
    http?.close(res);
    // The SDK looks for the length in `res.headers`, which a ServerResponse does not have; fastify hands its
    // headers to writeHead, so the reply, not the raw response, still knows them.
    const length = Number(reply.getHeader('content-length'));
    if (http?.response && Number.isSafeInteger(length)) http.response.content_length = length;
    segment.close();
  };
  // Both fire on a finished response (close follows finish); close alone when the client went away first.
  res.once('finish', end);
  res.once('close', end);
  return segment;
}

/**
 * Every incoming request becomes an X-Ray segment named `segmentName`, continuing an incoming
 * `X-Amzn-Trace-Id` (its Root, Parent and sampling decision), with method, URL, client IP, user agent,
 * status, error (4xx) / throttle (429) / fault (5xx) flags and, for a 5xx from a thrown error, its cause.
 * Hooks after it, handlers, undici calls and mysql2 queries run with the segment as their X-Ray context.
 *
 * Written over aws-xray-sdk-core's middleware utilities rather than using aws-xray-sdk-fastify: on
 * fastify 5 that plugin works but records no cause for a 5xx in its automatic mode, sends every segment
 * twice in manual mode, names segments process-wide and loses error details in pino
 * (test/xray-fastify-plugin-evaluation.test.ts shows the first two); and it keeps the context with
 * cls-hooked, whose async hooks cost about half the throughput (see runtime.ts).
 *
 * With `enabled: false` it registers nothing and the SDK is never loaded.
 */
export const xrayTracing = fp<XrayTracingOptions>(
  async function xrayTracing(app: FastifyInstance, options: XrayTracingOptions) {
    if (!options.enabled) return;
    const { sdk } = await acquireRuntime(options, app.log);
    const keepContext = options.keepContext !== false;
    app.addHook('onClose', async () => releaseRuntime());

    const scopes = new WeakMap<IncomingMessage, TraceScope>();
    const failures = new WeakMap<IncomingMessage, Error>();

    app.addHook('onRequest', (request, reply, done) => {
      const req = request.raw;
      const header: IncomingTraceHeader = sdk.middleware.processHeaders(req);
      const decision = samplingDecision(sdk, header, {
        host: req.headers.host,
        httpMethod: req.method,
        urlPath: req.url,
        serviceName: options.segmentName,
      });
      let scope: TraceScope;
      if (decision === false) {
        // Most requests in production: no segment, only the decision for the calls this request makes.
        if (!keepContext) return done();
        scope = new UnsampledTrace(validTraceId(header.root));
      } else {
        const rule = typeof decision === 'string' ? decision : undefined;
        scope = traceRequest(sdk, options.segmentName, header, rule, req, reply.raw, reply, () => failures.get(req));
        if (!keepContext) return done();
      }
      scopes.set(req, scope);
      runInScope(scope, done);
    });

    // The body is read from socket events. Node 20 keeps the context through them, which nothing promises
    // across versions: the handler (and the hooks before it) enter the scope again once it is parsed.
    if (keepContext) {
      app.addHook('preValidation', (request, _reply, done) => {
        const scope = scopes.get(request.raw);
        if (scope) runInScope(scope, done);
        else done();
      });
    }

    // Runs before the error handler: remember the error; the status decides later whether it is a cause.
    app.addHook('onError', (request, _reply, error, done) => {
      failures.set(request.raw, error);
      done();
    });
  },
  { fastify: '5.x', name: 'canary-xray-tracing' },
);
