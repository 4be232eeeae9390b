import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp, type NotificationDeps } from '../src/app.js';
import { loadNotificationConfig, type NotificationConfig } from '../src/config.js';

/** A config read the way the server reads it, from variables only; silent unless a test wants logs. */
export function testConfig(env: Record<string, string> = {}): NotificationConfig {
  return loadNotificationConfig({ LOG_LEVEL: 'silent', AWS_MAIL_SERVER_HOST: '127.0.0.1', ...env });
}

export async function startApp(env: Record<string, string> = {}, deps: NotificationDeps = {}): Promise<FastifyInstance> {
  const app = buildApp(testConfig(env), deps);
  await app.ready();
  return app;
}

/** A port nothing listens on: bound once by the OS, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface SilentServer {
  port: number;
  close(): Promise<void>;
}

/** Accepts TCP connections and never says a word: an SMTP server that hangs before its greeting. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export const validMail = {
  subject: 'Stack Simplify account creation.',
  content: 'Hello MicroFName, your stack simplify account is created successfully!',
  toEmails: ['microtest1@example.com'],
};
