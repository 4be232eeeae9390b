import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const fixturePath = fileURLToPath(new URL('../fixtures/traced-service.mjs', import.meta.url));

/** One JSON log line of the fixture's pino logger. */
export interface LogLine {
  level: number;
  msg: string;
  component?: string;
  [key: string]: unknown;
}

export interface FixtureProcess {
  origin: string;
  port: number;
  /** Every log line so far (stdout, parsed); `output` keeps the raw text of stdout and stderr. */
  logs: LogLine[];
  output(): string;
  get<T = unknown>(path: string, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
  stop(): Promise<void>;
}

/**
 * Starts test/fixtures/traced-service.mjs with `env` (and nothing else from this process's environment
 * but PATH), and resolves once it listens on its port.
 */
export async function startFixture(env: Record<string, string>): Promise<FixtureProcess> {
  const child = fork(fixturePath, [], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const logs: LogLine[] = [];
  let raw = '';
  let pending = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    raw += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // Not a log line: kept in the raw output only.
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk));

  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: { type?: string; port?: number }) => {
      if (message.type === 'listening' && typeof message.port === 'number') resolve(message.port);
    });
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before listening:\n${raw}`)));
  });
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    port,
    logs,
    output: () => raw,
    async get<T>(path: string, headers: Record<string, string> = {}) {
      const response = await fetch(new URL(path, origin), { headers });
      return { status: response.status, body: (await response.json()) as T, headers: response.headers };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Runs `fixture`'s requests `count` at a time, all at once. */
export function concurrently<T>(count: number, task: (index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => task(index)));
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
