import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { traceDispatcher, traceTask } from '@canary/service-kit';
import { InstanceBalancedPool, Pool } from '@canary/service-kit/connection-policy';
import type { UserManagementConfig } from './config.js';

export interface NotificationResponse {
  statusCode: number;
  contentType: string | undefined;
  body: Buffer;
}

/** `unavailable`: refused, reset, unresolvable or closed early; `timeout`: no answer within the configured limit. */
export type NotificationFailure = 'unavailable' | 'timeout';

/** The notification service could not be asked or did not answer; the message says why, without secrets. */
export class NotificationError extends Error {
  override readonly name = 'NotificationError';
  constructor(
    readonly kind: NotificationFailure,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface NotificationClient {
  /** `http://host:port` of the notification service. */
  readonly origin: string;
  /** GET one of the notification service's paths and return its answer as it came. */
  get(path: string): Promise<NotificationResponse>;
  /** POST /notification/send with an already serialized JSON body. */
  send(jsonBody: string, signal?: AbortSignal): Promise<NotificationResponse>;
  close(): Promise<void>;
}

export type NotificationClientSettings = Pick<
  UserManagementConfig,
  'NOTIFICATION_SERVICE_HOST' | 'NOTIFICATION_SERVICE_PORT' | 'NOTIFICATION_CONNECT_TIMEOUT_MS' | 'NOTIFICATION_RESPONSE_TIMEOUT_MS'
> &
  Partial<Pick<UserManagementConfig, 'AWS_XRAY_SDK_ENABLED' | 'NOTIFICATION_CONNECTION_POLICY'>>;

/** Its answers are a line of text or a small JSON object; anything far bigger is not the service we expect. */
const maxResponseBytes = 1_048_576;

/** Failures of a connection the peer closed, where a repeated idempotent request reaches a live replica. */
const retriableCodes = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNREFUSED']);

const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function toNotificationError(err: unknown, settings: NotificationClientSettings): NotificationError {
  if (err instanceof NotificationError) return err;
  const { code, message } = err as { code?: string; message?: string };
  const reason = message ?? String(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new NotificationError('timeout', `Notification service timed out: no connection within ${settings.NOTIFICATION_CONNECT_TIMEOUT_MS} ms`, code);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new NotificationError('timeout', `Notification service timed out: no response within ${settings.NOTIFICATION_RESPONSE_TIMEOUT_MS} ms`, code);
    case 'UND_ERR_BODY_TIMEOUT':
      return new NotificationError('timeout', `Notification service timed out: response body stalled for ${settings.NOTIFICATION_RESPONSE_TIMEOUT_MS} ms`, code);
    default:
      if (code && timeoutCodes.has(code)) return new NotificationError('timeout', `Notification service timed out: ${reason}`, code);
      return new NotificationError('unavailable', `Notification service unavailable: ${reason}`, code);
  }
}

/** An answer as it came: status, headers and the whole body. */
export interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * One call, its answer collected straight from undici's dispatch callbacks into one buffer (at most
 * `maxResponseBytes`): `request()` would hand the body over as a stream, and reading it cost a dozen promises and
 * stream ticks per call, each of which Node 20's AsyncLocalStorage (the X-Ray context) also pays for.
 */
export function call(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, signal?: AbortSignal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let statusCode = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    let controller: Dispatcher.DispatchController | undefined;
    const abort = (): void => controller?.abort(signal?.reason instanceof Error ? signal.reason : new Error('The call was aborted'));
    const settle = (): void => signal?.removeEventListener('abort', abort);
    signal?.addEventListener('abort', abort, { once: true });
    dispatcher.dispatch(options, {
      onRequestStart(started) {
        controller = started;
        if (signal?.aborted) abort();
      },
      onResponseStart(_controller, status, responseHeaders) {
        // 1xx answers are informational: the real one follows.
        if (status < 200) return;
        statusCode = status;
        headers = responseHeaders;
      },
      onResponseData(current, chunk) {
        size += chunk.length;
        if (size > maxResponseBytes) {
          current.abort(new NotificationError('unavailable', `Notification service unavailable: response larger than ${maxResponseBytes} bytes`, undefined));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        settle();
        resolve({ statusCode, headers, body: Buffer.concat(chunks, size) });
      },
      onResponseError(_controller, error) {
        settle();
        reject(error);
      },
    });
  });
}

/** Bounded, so a burst queues here instead of opening sockets without limit. */
const maxConnections = 100;

/**
 * The connections to the notification service with this client's timeouts and connection policy (see
 * NOTIFICATION_CONNECTION_POLICY), for a caller that wraps them.
 */
export function notificationPool(settings: NotificationClientSettings): Dispatcher {
  const timeouts = {
    connect: { timeout: settings.NOTIFICATION_CONNECT_TIMEOUT_MS },
    headersTimeout: settings.NOTIFICATION_RESPONSE_TIMEOUT_MS,
    bodyTimeout: settings.NOTIFICATION_RESPONSE_TIMEOUT_MS,
  };
  const origin = notificationOrigin(settings);
  switch (settings.NOTIFICATION_CONNECTION_POLICY ?? 'instance-balanced') {
    case 'keep-alive':
      return new Pool(origin, { ...timeouts, connections: maxConnections });
    case 'per-request':
      // A connection that closes after one request: kube-proxy picks a pod for every call.
      return new Pool(origin, { ...timeouts, connections: maxConnections, pipelining: 0 });
    case 'instance-balanced':
      return new InstanceBalancedPool(origin, {
        probePath: '/notification/health/ready',
        maxConnections,
        // Idle connections close on this side before the server's 72 s keep-alive ends, so no request meets a closing socket.
        clientOptions: { ...timeouts, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 },
      });
  }
}

export function notificationOrigin(settings: NotificationClientSettings): string {
  return `http://${settings.NOTIFICATION_SERVICE_HOST}:${settings.NOTIFICATION_SERVICE_PORT}`;
}

export interface NotificationClientOptions {
  /**
   * The dispatcher to send through instead of `notificationPool(settings)`, e.g. that pool wrapped for tracing or
   * another connection policy. The client owns it either way and closes it in `close()`.
   */
  dispatcher?: Dispatcher;
}

/**
 * The one module that makes outgoing HTTP calls. It owns its undici dispatcher (closed with `close()`), so
 * timeouts, the connection policy and tracing are set here and nowhere else. Each call is an X-Ray remote
 * subsegment carrying X-Amzn-Trace-Id (unless AWS_XRAY_SDK_ENABLED=false); a send outside any request (the
 * outbox) is traced as a segment of its own.
 */
export function createNotificationClient(settings: NotificationClientSettings, options: NotificationClientOptions = {}): NotificationClient {
  const origin = notificationOrigin(settings);
  const dispatcher = traceDispatcher(options.dispatcher ?? notificationPool(settings), { enabled: settings.AWS_XRAY_SDK_ENABLED !== false, origin });

  async function request(options: Dispatcher.DispatchOptions, signal?: AbortSignal): Promise<NotificationResponse> {
    // A GET is safe to repeat: when it meets a replica that is leaving (its socket reset, or its 503 while closing),
    // it is asked again, on another connection, so moving the canary loses no call.
    const attempts = options.method === 'GET' ? 3 : 1;
    for (let n = 1; ; n += 1) {
      try {
        const { statusCode, headers, body } = await call(dispatcher, options, signal);
        // A 503 that closes its connection comes from a replica that is shutting down, not from the service.
        const leaving = statusCode === 503 && headerValue(headers.connection) === 'close';
        if (!leaving || n >= attempts) return { statusCode, contentType: headerValue(headers['content-type']), body };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (n >= attempts || !code || !retriableCodes.has(code)) throw toNotificationError(err, settings);
      }
    }
  }

  return {
    origin,
    get(path) {
      return request({ origin, method: 'GET', path, headers: { accept: '*/*' } });
    },
    send(jsonBody, signal) {
      return traceTask('notification-send', () =>
        request(
          {
            origin,
            method: 'POST',
            path: '/notification/send',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: jsonBody,
          },
          signal,
        ),
      );
    },
    async close() {
      await dispatcher.close();
    },
  };
}
