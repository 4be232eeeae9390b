import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Whether the process still takes traffic: readiness routes answer 503 once it is shutting down. */
export interface Lifecycle {
  shuttingDown: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

export const lifecyclePlugin = fp(async function lifecyclePlugin(app: FastifyInstance) {
  app.decorate('lifecycle', { shuttingDown: false });
  // A response finished during shutdown closes its connection: a kept-alive socket would otherwise hold
  // server.close() open until the grace period kills the process, and the client would keep sending to a leaving pod.
  // Callback style: an async hook costs every response a promise.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (app.lifecycle.shuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });
});

export interface RunOptions {
  app: FastifyInstance;
  /** Service name for the log and for the parent process. */
  service: string;
  host: string;
  port: number;
  /** How long in-flight work may take after SIGTERM before the process gives up and exits 1. */
  graceMs: number;
  /** How long readiness reports "not ready" before the listener closes, so balancers stop sending first. */
  drainMs: number;
}

/** A message to a parent process (the local stack, tests) that started this one with an IPC channel. */
export interface ListeningMessage {
  type: 'listening';
  service: string;
  port: number;
}

/**
 * Listens, and on SIGTERM/SIGINT drains: readiness turns false, after `drainMs` the listener closes and
 * in-flight requests finish, then onClose hooks release pools. Exceeding `graceMs` exits with code 1.
 */
export async function runService({ app, service, host, port, graceMs, drainMs }: RunOptions): Promise<void> {
  closeWithGrace({ delay: graceMs, logger: { error: (msg: unknown) => app.log.error(msg) } }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'stopping after an unexpected error');
    else app.log.info({ signal, drainMs }, 'shutting down');
    app.lifecycle.shuttingDown = true;
    if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
    await app.close();
    app.log.info('stopped');
    process.disconnect?.();
  });

  try {
    await app.listen({ host, port });
  } catch (err) {
    // Name the variables: "getaddrinfo ENOTFOUND" alone does not say which setting to fix.
    throw new Error(`Cannot listen on HOST=${host} PORT=${port}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  if (process.send) {
    const message: ListeningMessage = { type: 'listening', service, port: boundPort };
    process.send(message);
  }
}
