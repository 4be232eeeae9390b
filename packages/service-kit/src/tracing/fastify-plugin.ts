import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { newTraceId, validEntityId, validTraceId } from './ids.js';
import type { XrayTracingOptions } from './options.js';
import { acquireRuntime, releaseRuntime, runInScope, UnsampledTrace, type TraceScope, type XrayRuntime } from './runtime.js';
import { parseTraceHeader, samplingDecision } from './sampling.js';
import type { HttpData, TraceSegment } from './segment.js';

/** Where a request keeps its trace scope, and the error fastify handled for it (a 5xx's cause). */
const scopeKey = Symbol('xray.scope');
const failureKey = Symbol('xray.failure');

declare module 'fastify' {
  interface FastifyRequest {
    [scopeKey]: TraceScope | null;
    [failureKey]: Error | null;
  }
}

/** The address the request came from: the first of X-Forwarded-For when a proxy (the ALB) set it, as X-Ray shows it. */
function clientIp(req: IncomingMessage, forwarded: string | undefined): string {
  if (forwarded) return forwarded.split(',')[0]!.trim();
  return req.socket.remoteAddress ?? '';
}

/** The segment of one sampled incoming request, with what X-Ray shows of the request itself. */
function openSegment(runtime: XrayRuntime, name: string, traceId: string, parentId: string | undefined, rule: string | undefined, req: IncomingMessage): TraceSegment {
  const segment = runtime.newSegment(name, traceId, parentId);
  segment.ruleName = rule;
  const headers = req.headers;
  const forwarded = typeof headers['x-forwarded-for'] === 'string' ? headers['x-forwarded-for'] : undefined;
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https://' : 'http://';
  const request: NonNullable<HttpData['request']> = {
    method: req.method ?? '',
    user_agent: headers['user-agent'] ?? '',
    client_ip: clientIp(req, forwarded),
    url: `${scheme}${headers.host ?? ''}${req.url ?? ''}`,
  };
  if (forwarded) request.x_forwarded_for = true;
  segment.http = { request };
  return segment;
}

/**
 * Nginx's status for a request whose client closed the connection before the response: what X-Ray shows for one,
 * a client-side (4xx) error.
 */
export const clientClosedRequest = 499;

/**
 * Closes the segment when the response is done: on its 'close', which follows a finished response and also comes
 * alone when the client went away first (recorded as `clientClosedRequest`). With the status, its length, flags
 * and, for a 5xx, the error fastify handled. Listening on the response of sampled requests only keeps the cost
 * off the others: a fastify hook (onResponse, onRequestAbort) would run for every request.
 */
function closeOnResponse(segment: TraceSegment, request: FastifyRequest, reply: FastifyReply): void {
  const res = reply.raw;
  res.once('close', () => {
    const finished = res.writableFinished;
    const status = finished ? res.statusCode : clientClosedRequest;
    // Fastify hands its headers to writeHead, so the reply, not the raw response, knows the length it sent.
    const length = finished ? Number(reply.getHeader('content-length')) : Number.NaN;
    segment.http = { request: segment.http?.request ?? {}, response: Number.isSafeInteger(length) ? { status, content_length: length } : { status } };
    segment.flagStatus(status);
    segment.close(status >= 500 ? (request[failureKey] ?? undefined) : undefined);
  });
}

/**
 * Every incoming request becomes an X-Ray segment named `segmentName`, continuing an incoming
 * `X-Amzn-Trace-Id` (its Root, Parent and sampling decision), with method, URL, client IP, user agent,
 * status, error (4xx) / throttle (429) / fault (5xx) flags and, for a 5xx from a thrown error, its cause.
 * Hooks after it, handlers, undici calls and mysql2 queries run with the segment as their X-Ray context.
 *
 * Written over aws-xray-sdk-core's sampler rather than using aws-xray-sdk-fastify: on fastify 5 that plugin
 * works but records no cause for a 5xx in its automatic mode, sends every segment twice in manual mode, names
 * segments process-wide and loses error details in pino (test/xray-fastify-plugin-evaluation.test.ts shows the
 * first two); it keeps the context with cls-hooked, whose async hooks cost about half the throughput (see
 * runtime.ts); and the SDK's segments cost more than the request they describe (see segment.ts).
 *
 * With `enabled: false` it registers nothing and the SDK is never loaded.
 */
export const xrayTracing = fp<XrayTracingOptions>(
  async function xrayTracing(app: FastifyInstance, options: XrayTracingOptions) {
    if (!options.enabled) return;
    const runtime = await acquireRuntime(options, app.log);
    const { sdk } = runtime;
    const keepContext = options.keepContext !== false;
    app.addHook('onClose', async () => releaseRuntime());

    app.decorateRequest(scopeKey, null);
    app.decorateRequest(failureKey, null);

    app.addHook('onRequest', (request, reply, done) => {
      const req = request.raw;
      const header = parseTraceHeader(req.headers['x-amzn-trace-id']);
      const decision = samplingDecision(sdk, header, () => ({
        host: req.headers.host,
        httpMethod: req.method,
        urlPath: req.url,
        serviceName: options.segmentName,
      }));
      // A caller that left the decision to us (`Sampled=?`) is told it, with the trace, as the SDK's middleware does.
      const tellCaller = header.sampled === '?';
      let scope: TraceScope;
      if (decision === false) {
        // Most requests in production: no segment, only the decision for the calls this request makes.
        if (!keepContext && !tellCaller) return done();
        const unsampled = new UnsampledTrace(validTraceId(header.root));
        if (tellCaller) reply.header('x-amzn-trace-id', `Root=${unsampled.traceId};Sampled=0`);
        if (!keepContext) return done();
        scope = unsampled;
      } else {
        const traceId = validTraceId(header.root);
        // A parent is only kept within the caller's (well-formed) trace.
        const parentId = traceId ? validEntityId(header.parent) : undefined;
        const rule = typeof decision === 'string' ? decision : undefined;
        const segment = openSegment(runtime, options.segmentName, traceId ?? newTraceId(), parentId, rule, req);
        if (tellCaller) reply.header('x-amzn-trace-id', `Root=${segment.traceId};Sampled=1`);
        closeOnResponse(segment, request, reply);
        scope = segment;
      }
      request[scopeKey] = scope;
      if (keepContext) runInScope(scope, done);
      else done();
    });

    // The body is read from socket events. Node 20 keeps the context through them, which nothing promises
    // across versions: the handler (and the hooks before it) enter the scope again once it is parsed.
    if (keepContext) {
      app.addHook('preValidation', (request, _reply, done) => {
        const scope = request[scopeKey];
        if (scope) runInScope(scope, done);
        else done();
      });
    }

    // Runs before the error handler: remember the error; the status decides later whether it is a cause.
    app.addHook('onError', (request, _reply, error, done) => {
      request[failureKey] = error;
      done();
    });

  },
  { fastify: '5.x', name: 'canary-xray-tracing' },
);
