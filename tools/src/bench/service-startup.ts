import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stopChild } from './child-processes.js';
import { residentBytes, synRetransmits } from './proc-stats.js';
import { serviceBundle, type BundledService } from '../bundle/bundle-paths.js';

export type ServiceName = BundledService;

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
  /** SYNs the machine resent meanwhile (any process's; undefined where not readable): each one polled costs 1 s. */
  synRetransmits?: number;
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

/** A service started alone and ready, left running: its figures, and how to read its memory later and stop it. */
export interface StandaloneService {
  pid: number;
  figures: StartupFigures;
  residentBytes(): number;
  stop(): Promise<void>;
}

/**
 * Starts one service alone, as `node services/<name>/dist/bundle.js` (what its image runs) with the given
 * environment, and times it from process creation to the first successful readiness check (polled every 5 ms). It
 * keeps running until stopped.
 */
export async function startAlone(service: ServiceName, env: Record<string, string>, timeoutMs = 30_000): Promise<StandaloneService> {
  const port = await freePort();
  const entry = serviceBundle(repositoryRoot, service);
  const synsBefore = synRetransmits();
  const started = performance.now();
  const child = spawn(process.execPath, [entry], {
    env: { ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  const stop = (): Promise<void> => stopChild(child, 10_000);
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
    const pid = child.pid as number;
    const synsAfter = synRetransmits();
    const figures: StartupFigures = { readyMs: Math.round(readyMs), rssBytes: residentBytes(pid) };
    if (synsBefore !== undefined && synsAfter !== undefined) figures.synRetransmits = synsAfter - synsBefore;
    return { pid, figures, residentBytes: () => residentBytes(pid), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `startAlone`, then stopped at once: only its start-up figures. */
export async function measureStartup(service: ServiceName, env: Record<string, string>, timeoutMs = 30_000): Promise<StartupFigures> {
  const alone = await startAlone(service, env, timeoutMs);
  await alone.stop();
  return alone.figures;
}
