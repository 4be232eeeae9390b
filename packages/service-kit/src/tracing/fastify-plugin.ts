import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { newTraceId, validEntityId, validTraceId } from './ids.js';
import type { XrayTracingOptions } from './options.js';
import { acquireRuntime, releaseRuntime, runInScope, UnsampledTrace, type TraceScope, type XrayRuntime } from './runtime.js';
import { parseTraceHeader, samplingDecision } from './sampling.js';
import type { TraceSegment } from './segment.js';

/** The address the request came from: the first of X-Forwarded-For when a proxy (the ALB) set it, as X-Ray shows it. */
function clientIp(req: IncomingMessage, forwarded: string | undefined): string {
  if (forwarded) return forwarded.split(',')[0]!.trim();
  return req.socket.remoteAddress ?? '';
}

/**
 * Opens the segment of one sampled incoming request and closes it once the response is finished (or the
 * connection closed). `failure()` returns the error fastify handled for this request, recorded as the cause
 * when the status is 5xx.
 */
function traceRequest(
  runtime: XrayRuntime,
  name: string,
  traceId: string,
  parentId: string | undefined,
  rule: string | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  reply: { getHeader(name: string): unknown },
  failure: () => Error | undefined,
): TraceSegment {
  const segment = runtime.newSegment(name, traceId, parentId);
  segment.ruleName = rule;
  const headers = req.headers;
  const forwarded = typeof headers['x-forwarded-for'] === 'string' ? headers['x-forwarded-for'] : undefined;
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https://' : 'http://';
  const request: NonNullable<NonNullable<TraceSegment['http']>['request']> = {
    method: req.method ?? '',
    user_agent: headers['user-agent'] ?? '',
    client_ip: clientIp(req, forwarded),
    url: `${scheme}${headers.host ?? ''}${req.url ?? ''}`,
  };
  if (forwarded) request.x_forwarded_for = true;
  segment.http = { request };

  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    const status = res.statusCode;
    // Fastify hands its headers to writeHead, so the reply, not the raw response, knows the length it sent.
    const length = Number(reply.getHeader('content-length'));
    segment.http = { request, response: Number.isSafeInteger(length) ? { status, content_length: length } : { status } };
    segment.flagStatus(status);
    const err = status >= 500 ? failure() : undefined;
    segment.close(err);
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

    const scopes = new WeakMap<IncomingMessage, TraceScope>();
    const failures = new WeakMap<IncomingMessage, Error>();

    app.addHook('onRequest', (request, reply, done) => {
      const req = request.raw;
      const header = parseTraceHeader(req.headers['x-amzn-trace-id']);
      const decision = samplingDecision(sdk, header, {
        host: req.headers.host,
        httpMethod: req.method,
        urlPath: req.url,
        serviceName: options.segmentName,
      });
      const traceId = validTraceId(header.root);
      let scope: TraceScope;
      if (decision === false) {
        // Most requests in production: no segment, only the decision for the calls this request makes.
        if (!keepContext) return done();
        scope = new UnsampledTrace(traceId);
      } else {
        const rule = typeof decision === 'string' ? decision : undefined;
        // A parent is only kept within the caller's (well-formed) trace.
        const parentId = traceId ? validEntityId(header.parent) : undefined;
        scope = traceRequest(runtime, options.segmentName, traceId ?? newTraceId(), parentId, rule, req, reply.raw, reply, () => failures.get(req));
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
