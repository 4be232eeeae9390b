import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';

export const healthPath = '/notification/health/ready';

export interface TestBackend {
  name: string;
  port: number;
  /** What the health route answers from now on. */
  setHealthy(healthy: boolean): void;
  /** Requests served, health probes excluded. */
  served: number;
  close(): Promise<void>;
}

/** A real HTTP server that answers every request with its name, and its health route with 200 or 503. */
export async function startBackend(name: string): Promise<TestBackend> {
  let healthy = true;
  const backend: TestBackend = {
    name,
    port: 0,
    served: 0,
    setHealthy(value) {
      healthy = value;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((request, response) => {
    if (request.url === healthPath) {
      response.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: healthy ? 'UP' : 'DOWN' }));
      return;
    }
    backend.served += 1;
    response.end(name);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backend.port = (server.address() as net.AddressInfo).port;
  return backend;
}

/** One request on a new connection (no agent, so no reuse): which backend answered. */
export function askWho(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/who', agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** What happens to a raw TCP connection to `port` that sends nothing: the bytes received and how it ended. */
export function connectAndListen(port: number, send?: string, halfClose = false): Promise<{ data: string; ending: 'end' | 'reset' | 'error' }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let data = '';
    let ending: 'end' | 'reset' | 'error' = 'end';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      if (send !== undefined) socket.write(send);
      if (halfClose) socket.end();
    });
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => socket.end());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      ending = err.code === 'ECONNRESET' ? 'reset' : 'error';
    });
    socket.on('close', () => resolve({ data, ending }));
  });
}

/** Polls `condition` every 20 ms until it holds; throws with `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
