import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { loadConfig, type Env } from '@canary/service-kit';
import { configSchema, type UserManagementConfig } from '../../src/config.js';

/** The service's configuration for a test: the test database, silent logs, fast outbox retries. */
export function testConfig(dbEnv: Env, overrides: Env = {}): UserManagementConfig {
  return loadConfig(configSchema, {
    LOG_LEVEL: 'silent',
    NOTIFICATION_SERVICE_HOST: '127.0.0.1',
    OUTBOX_RETRY_BASE_MS: '50',
    OUTBOX_RETRY_MAX_MS: '200',
    OUTBOX_POLL_INTERVAL_MS: '100',
    ...dbEnv,
    ...overrides,
  });
}

export interface RecordedRequest {
  method: string;
  url: string;
  contentType: string | undefined;
  body: string;
}

/** What the fake notification service does with a request. */
export type Behaviour = 'ok' | 'fail' | 'hang' | 'reset';

export interface FakeNotification {
  port: number;
  requests: RecordedRequest[];
  /** Bodies of the POST /notification/send requests, parsed. */
  sent(): unknown[];
  behaviour: Behaviour;
  /** Answer this much later (ms), so concurrent callers overlap. */
  delayMs: number;
  /** Awaited before a POST /notification/send is answered: a test's hook into the moment the e-mail has gone. */
  beforeAnswer: (() => Promise<void>) | undefined;
  /** Resolves once `count` POST /notification/send requests have been answered 2xx. */
  waitForDeliveries(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real HTTP server playing the notification service: it records every request and answers as told
 * (`ok`, `fail` with a 500, `hang` without answering, `reset` by dropping the connection).
 */
export async function startFakeNotification(): Promise<FakeNotification> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let delivered = 0;
  const waiters = new Set<() => void>();
  const fake: FakeNotification = {
    port: 0,
    requests,
    behaviour: 'ok',
    delayMs: 0,
    beforeAnswer: undefined,
    sent: () => requests.filter((r) => r.method === 'POST' && r.url === '/notification/send').map((r) => JSON.parse(r.body) as unknown),
    waitForDeliveries(count, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (delivered >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} deliveries within ${timeoutMs} ms, got ${delivered}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  function answer(request: IncomingMessage, response: ServerResponse, body: string): void {
    const url = request.url ?? '';
    if (request.method === 'POST' && url === '/notification/send') {
      if (fake.behaviour === 'fail') {
        response.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"SMTP server said no"}');
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"sent"}');
      delivered++;
      for (const wake of waiters) wake();
      return;
    }
    if (fake.behaviour === 'fail') {
      response.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"DOWN"}');
      return;
    }
    switch (url) {
      case '/notification/health-status':
        response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('Notification Service is UP and Running - V2');
        return;
      case '/notification/info':
        response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`IP: 10.0.0.7\nHostname: fake-${body.length}\nVersion: V2`);
        return;
      case '/notification/xray':
        response
          .writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
          .end('{"applicationname":"Notification Microservice","appversion":"V2","message":"Enabled AWS XRay"}');
        return;
      default:
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"no such route"}');
    }
  }

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: request.method ?? '', url: request.url ?? '', contentType: request.headers['content-type'], body });
      if (fake.behaviour === 'hang') return;
      if (fake.behaviour === 'reset') {
        request.socket.destroy();
        return;
      }
      const hook = request.url === '/notification/send' ? fake.beforeAnswer : undefined;
      if (hook) void hook().then(() => answer(request, response, body), () => request.socket.destroy());
      else if (fake.delayMs > 0) setTimeout(() => answer(request, response, body), fake.delayMs);
      else answer(request, response, body);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fake.port = (server.address() as AddressInfo).port;
  return fake;
}

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `condition` until it holds; for side effects that happen after a response (the outbox). */
export async function eventually<T>(condition: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const validUser = {
  username: 'microtest1',
  email: 'microtest1@example.com',
  role: 'ROLE_ADMIN',
  enabled: true,
  firstname: 'MicroFName',
  lastname: 'MicroLname',
  password: 'Pass@123',
};
