import { WebSocket } from 'undici';
import { residentBytes } from '../bench/proc-stats.js';

/** A service process whose memory the load test follows. */
export interface WatchedService {
  name: string;
  pid: number;
  /** Its inspector's WebSocket URL, when it was started with --inspect. */
  inspector?: string;
}

export interface MemorySample {
  rssBytes: number;
  /** V8 heap in use, read over the inspector right after a forced collection. */
  heapUsedBytes?: number;
}

/** VmRSS of the process, or 0 if it is gone. */
export function rssOf(pid: number): number {
  try {
    return residentBytes(pid);
  } catch {
    return 0;
  }
}

/** Sends one inspector command and resolves with its result. */
function command(socket: WebSocket, id: number, method: string, params: object = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (event: { data: unknown }): void => {
      const reply = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (reply.id !== id) return;
      socket.removeEventListener('message', onMessage);
      if (reply.error) reject(new Error(`${method}: ${reply.error.message}`));
      else resolve(reply.result);
    };
    socket.addEventListener('message', onMessage);
    socket.send(JSON.stringify({ id, method, params }));
  });
}

/**
 * Forces two full garbage collections in the process behind `url` (Node's inspector protocol, the call Chrome's
 * "collect garbage" button makes) and returns its heap in use afterwards, so "before" and "after" compare live data.
 */
export async function collectGarbage(url: string): Promise<number> {
  const socket = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve());
      socket.addEventListener('error', () => reject(new Error(`cannot reach the inspector at ${url}`)));
    });
    await command(socket, 1, 'HeapProfiler.collectGarbage');
    await command(socket, 2, 'HeapProfiler.collectGarbage');
    const evaluated = (await command(socket, 3, 'Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true })) as {
      result: { value: number };
    };
    return evaluated.result.value;
  } finally {
    socket.close();
  }
}

export async function sample(service: WatchedService, gc: boolean): Promise<MemorySample> {
  const heapUsedBytes = gc && service.inspector ? await collectGarbage(service.inspector) : undefined;
  return { rssBytes: rssOf(service.pid), ...(heapUsedBytes === undefined ? {} : { heapUsedBytes }) };
}

/** Samples the RSS of every service once a second and keeps each one's peak, until stopped. */
export function watchPeaks(services: readonly WatchedService[]): { stop(): Map<string, number> } {
  const peaks = new Map(services.map((service) => [service.name, rssOf(service.pid)]));
  const timer = setInterval(() => {
    for (const service of services) peaks.set(service.name, Math.max(peaks.get(service.name) ?? 0, rssOf(service.pid)));
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}
