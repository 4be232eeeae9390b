import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { residentBytes } from './proc-stats.js';

export type ServiceName = 'notification' | 'user-management';

const readinessPath: Record<ServiceName, string> = {
  notification: '/notification/health/ready',
  'user-management': '/usermgmt/health/ready',
};

export const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface StartupFigures {
  /** From spawn() to the first 200 of the readiness route. */
  readyMs: number;
  /** Resident memory right after that first 200. */
  rssBytes: number;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await request(url, { headersTimeout: 1000, bodyTimeout: 1000, reset: true });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

/**
 * Starts one service alone, as `node services/<name>/dist/server.js` with the given environment, and times it from
 * process creation to the first successful readiness check (polled every 5 ms), then stops it.
 */
export async function measureStartup(service: ServiceName, env: Record<string, string>, timeoutMs = 30_000): Promise<StartupFigures> {
  const port = await freePort();
  const entry = fileURLToPath(new URL(`services/${service}/dist/server.js`, `file://${repositoryRoot}`));
  const started = performance.now();
  const child = spawn(process.execPath, [entry], {
    env: { ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  const exited = once(child, 'exit');
  try {
    const url = `http://127.0.0.1:${port}${readinessPath[service]}`;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${service} exited (${child.signalCode ?? child.exitCode}) before it was ready: ${stderr.trim()}`);
      }
      if (await answers(url)) break;
      if (performance.now() - started > timeoutMs) throw new Error(`${service} was not ready within ${timeoutMs} ms: ${stderr.trim()}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const readyMs = performance.now() - started;
    return { readyMs: Math.round(readyMs), rssBytes: residentBytes(child.pid as number) };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }
}
