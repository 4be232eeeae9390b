import net from 'node:net';
import { once } from 'node:events';
import { probe } from './health-check.js';

export interface BackendAddress {
  host: string;
  port: number;
}

/** Connection counts of one backend, kept for its whole life in this balancer (also after removal). */
export interface BackendStats {
  /** Connections opened through the balancer to this backend. */
  opened: number;
  /** Of those, the ones still open. */
  active: number;
  /** Connection attempts the backend refused or that failed before connecting. */
  failed: number;
}

export interface BackendState extends BackendAddress, BackendStats {
  /** `host:port` (IPv6 hosts in brackets). */
  id: string;
  healthy: boolean;
}

export type BalancerEvent =
  | { type: 'added' | 'removed' | 'healthy' | 'unhealthy'; backend: string }
  | { type: 'connect-failed'; backend: string; error: string }
  | { type: 'no-backend' };

export interface BalancerOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see `Balancer.port`). */
  port: number;
  backends?: BackendAddress[];
  /** Path answered with 200 while a backend takes traffic (its readiness route). */
  healthPath: string;
  /** Pause between two probes of one backend; default 500 ms. */
  healthIntervalMs?: number;
  /** A probe not answered within this is a failure; default 2000 ms. */
  healthTimeoutMs?: number;
  /** A backend that has not accepted a connection within this counts as refusing it; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Health changes, removals and failed connections, for a log. */
  onEvent?: (event: BalancerEvent) => void;
}

export interface Balancer {
  readonly host: string;
  readonly port: number;
  /** Adds a backend (unhealthy until its first probe answers 200); adding a known one does nothing. */
  addBackend(backend: BackendAddress): void;
  /** Stops sending new connections to the backend; connections already open stay until either side closes them. */
  removeBackend(backend: BackendAddress): boolean;
  backends(): BackendState[];
  /** Resolves once the backend's probe answered 200; rejects if it is removed or `timeoutMs` passes first. */
  whenHealthy(backend: BackendAddress, timeoutMs?: number): Promise<void>;
  /** Counts of every backend ever added, by id, including removed ones. */
  stats(): Record<string, BackendStats>;
  /** Stops listening and probing and closes every open connection. */
  close(): Promise<void>;
}

interface Backend extends BackendAddress {
  id: string;
  healthy: boolean;
  removed: boolean;
  timer: NodeJS.Timeout | undefined;
  waiters: Set<() => void>;
}

export function backendId({ host, port }: BackendAddress): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Closes a socket the way its peer should see a failure: with a reset, as a kernel NAT passes one on. */
function abort(socket: net.Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy();
}

/**
 * A TCP balancer that gives each NEW connection to a backend picked uniformly at random among the healthy ones,
 * as kube-proxy (iptables mode) does for a ClusterIP Service. Requests on a kept-alive connection all go to the
 * backend the connection was given to. Unlike iptables, a connection a backend refuses is retried once on each
 * other healthy backend before the client sees a reset: nothing has reached the backend yet, so this is safe.
 */
export async function createBalancer(options: BalancerOptions): Promise<Balancer> {
  const host = options.host ?? '127.0.0.1';
  const intervalMs = options.healthIntervalMs ?? 500;
  const timeoutMs = options.healthTimeoutMs ?? 2000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const emit = options.onEvent ?? (() => {});
  const backends = new Map<string, Backend>();
  const stats = new Map<string, BackendStats>();
  const connections = new Set<net.Socket>();
  let closed = false;
  const stopProbes = new AbortController();

  function statsOf(id: string): BackendStats {
    let entry = stats.get(id);
    if (!entry) {
      entry = { opened: 0, active: 0, failed: 0 };
      stats.set(id, entry);
    }
    return entry;
  }

  function setHealth(backend: Backend, healthy: boolean): void {
    if (backend.removed || backend.healthy === healthy) return;
    backend.healthy = healthy;
    emit({ type: healthy ? 'healthy' : 'unhealthy', backend: backend.id });
    if (healthy) for (const wake of backend.waiters) wake();
  }

  async function check(backend: Backend): Promise<void> {
    backend.timer = undefined;
    const ok = await probe(backend.host, backend.port, options.healthPath, timeoutMs, stopProbes.signal);
    if (backend.removed || closed) return;
    setHealth(backend, ok);
    backend.timer = setTimeout(() => void check(backend), intervalMs);
  }

  function addBackend(address: BackendAddress): void {
    const id = backendId(address);
    if (closed || backends.has(id)) return;
    const backend: Backend = { host: address.host, port: address.port, id, healthy: false, removed: false, timer: undefined, waiters: new Set() };
    backends.set(id, backend);
    statsOf(id);
    emit({ type: 'added', backend: id });
    void check(backend);
  }

  function removeBackend(address: BackendAddress): boolean {
    const id = backendId(address);
    const backend = backends.get(id);
    if (!backend) return false;
    backends.delete(id);
    backend.removed = true;
    backend.healthy = false;
    clearTimeout(backend.timer);
    for (const wake of backend.waiters) wake();
    emit({ type: 'removed', backend: id });
    return true;
  }

  function pick(exclude: Set<string>): Backend | undefined {
    const candidates = [...backends.values()].filter((b) => b.healthy && !exclude.has(b.id));
    return candidates[Math.floor(Math.random() * candidates.length)];
  }

  function forward(client: net.Socket, tried: Set<string>): void {
    const backend = pick(tried);
    if (!backend) {
      if (tried.size === 0) emit({ type: 'no-backend' });
      abort(client);
      return;
    }
    tried.add(backend.id);
    const counts = statsOf(backend.id);
    let connected = false;
    const upstream = net.connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
    connections.add(upstream);
    upstream.setTimeout(connectTimeoutMs, () => upstream.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)));
    const clientGone = (): void => abort(upstream);
    client.once('close', clientGone);

    upstream.once('connect', () => {
      connected = true;
      counts.opened += 1;
      counts.active += 1;
      upstream.setTimeout(0);
      client.off('close', clientGone);
      // A clean close needs nothing here: pipe() forwards each FIN, so a half-closed side stays half-open and the
      // other direction drains completely. Only a failure is passed on, as a reset.
      client.on('error', () => abort(upstream));
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', (err: Error) => {
      if (connected) {
        abort(client);
        return;
      }
      // Nothing was sent yet, so another backend can still serve this client.
      counts.failed += 1;
      emit({ type: 'connect-failed', backend: backend.id, error: err.message });
      setHealth(backend, false);
      client.off('close', clientGone);
      if (!client.destroyed && !closed) forward(client, tried);
    });
    upstream.once('close', () => {
      connections.delete(upstream);
      if (connected) counts.active -= 1;
    });
  }

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    connections.add(client);
    // Until a backend is connected, errors only mean the client went away; 'close' cleans up.
    client.on('error', () => {});
    client.once('close', () => connections.delete(client));
    forward(client, new Set());
  });

  server.listen(options.port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
  const address = server.address() as net.AddressInfo;
  for (const backend of options.backends ?? []) addBackend(backend);

  return {
    host,
    port: address.port,
    addBackend,
    removeBackend,
    backends() {
      return [...backends.values()].map((b) => ({ id: b.id, host: b.host, port: b.port, healthy: b.healthy, ...statsOf(b.id) }));
    },
    whenHealthy(address, waitMs = 30_000) {
      const backend = backends.get(backendId(address));
      if (!backend) return Promise.reject(new Error(`${backendId(address)} is not a backend of this balancer`));
      if (backend.healthy) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          backend.waiters.delete(wake);
          reject(new Error(`${backend.id} did not answer ${options.healthPath} with 200 within ${waitMs} ms`));
        }, waitMs);
        const wake = (): void => {
          clearTimeout(timer);
          backend.waiters.delete(wake);
          if (backend.removed) reject(new Error(`${backend.id} was removed before it became healthy`));
          else resolve();
        };
        backend.waiters.add(wake);
      });
    },
    stats() {
      return Object.fromEntries([...stats].map(([id, s]) => [id, { ...s }]));
    },
    async close() {
      if (closed) return;
      closed = true;
      stopProbes.abort();
      for (const backend of [...backends.values()]) removeBackend(backend);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of connections) abort(socket);
      await stopped;
    },
  };
}
