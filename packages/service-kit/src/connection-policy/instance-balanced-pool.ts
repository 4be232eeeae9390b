import type { IncomingHttpHeaders } from 'node:http';
import type { Client, Dispatcher } from 'undici';
import * as undici from './undici-classes.js';
import { instanceHeader } from './instance-header.js';

export { instanceHeader };

export interface InstanceBalancedPoolOptions {
  /** Path a probe connection calls to learn which instance it reached (a cheap route that sends `instanceHeader`). */
  probePath: string;
  /** Upper bound of open connections, probes included. */
  maxConnections?: number;
  /** While traffic flows, one probe connection this often looks for new instances. */
  probeIntervalMs?: number;
  /** Options for each underlying connection (timeouts, keep-alive). `pipelining` is always 1. */
  clientOptions?: Omit<Client.Options, 'pipelining'>;
  /** Told once when the pool stops balancing by instance (a layer-7 proxy in between, or no instance header). */
  onModeChange?: (mode: PoolMode, reason: string) => void;
}

/**
 * `instance`: requests are spread round-robin over the instances seen behind the origin.
 * `pooled`: plain least-busy pooling, when something in between already balances each request (an Envoy sidecar)
 * or the upstream does not say who it is.
 */
export type PoolMode = 'instance' | 'pooled';

export interface InstanceStats {
  id: string;
  connections: number;
  requests: number;
}

export interface PoolStats {
  mode: PoolMode;
  connections: number;
  instances: InstanceStats[];
  probes: number;
}

class Connection {
  instance: string | undefined;
  inFlight = 0;
  lastUsed = 0;
  closed = false;
  constructor(readonly client: Client) {}
}

type Observer = (statusCode: number, headers: IncomingHttpHeaders) => void;

/** Passes everything through to the caller's handler; tells the pool who answered and when the call is over. */
class ObservingHandler extends undici.DecoratorHandler {
  constructor(
    handler: Dispatcher.DispatchHandler,
    private readonly observe: Observer,
    private readonly finish: () => void,
  ) {
    super(handler);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode >= 200) this.observe(statusCode, headers);
    return base.onResponseStart.call(this, controller, statusCode, headers, statusMessage);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.finish();
    return base.onResponseEnd.call(this, controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.finish();
    return base.onResponseError.call(this, controller, error);
  }
}

const base = undici.DecoratorHandler.prototype as unknown as Required<
  Pick<Dispatcher.DispatchHandler, 'onResponseStart' | 'onResponseEnd' | 'onResponseError'>
>;

/**
 * A GET of `path` whose body is discarded: its final status and headers. Through `dispatch`, because `request()`
 * is added to every dispatcher by undici's index, which this module does not load (see undici-classes.ts).
 */
function probeRequest(client: Client, path: string, timeoutMs: number): Promise<{ statusCode: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    let answer: { statusCode: number; headers: IncomingHttpHeaders } | undefined;
    try {
      client.dispatch(
        { method: 'GET', path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
        {
          // Its presence tells undici this handler uses the controller API (onResponse*), as ObservingHandler does.
          onRequestStart() {},
          onResponseStart(_controller, statusCode, headers) {
            if (statusCode >= 200) answer = { statusCode, headers: headers as IncomingHttpHeaders };
          },
          onResponseData() {},
          onResponseEnd() {
            if (answer) resolve(answer);
            else reject(new Error(`${path}: no final response`));
          },
          onResponseError(_controller, error) {
            reject(error);
          },
        },
      );
    } catch (err) {
      reject(err as Error);
    }
  });
}

/**
 * A connection pool that spreads requests evenly over the instances behind a connection-balanced address
 * (a Kubernetes ClusterIP Service, whose kube-proxy picks a pod only when a connection opens).
 *
 * Plain keep-alive pooling pins all traffic to the few pods its first connections reached, so the V1/V2 split stops
 * following the replica counts. Opening a connection per request restores the split at the cost of a handshake per call.
 * This pool keeps connections alive and learns, from a response header, which instance each one reached; it then sends
 * request N to instance N mod K. New instances are found by probe connections (a burst when the set changes, then one a
 * second while traffic flows); instances that go away close their connections and drop out.
 */
export class InstanceBalancedPool extends undici.Dispatcher {
  private readonly origin: URL;
  private readonly connections = new Set<Connection>();
  private readonly requestsByInstance = new Map<string, number>();
  private readonly maxConnections: number;
  private readonly probePath: string;
  private readonly clientOptions: Omit<Client.Options, 'pipelining'>;
  private readonly onModeChange: InstanceBalancedPoolOptions['onModeChange'];
  private readonly timer: NodeJS.Timeout;
  private mode: PoolMode = 'instance';
  private turn = 0;
  private probesInFlight = 0;
  private probesSent = 0;
  /** Consecutive probes that found no new instance; discovery goes on until this passes a bound that grows with K. */
  private fruitlessProbes = 0;
  private discovering = false;
  /** A discovery that found no instance at all (the upstream is down or not ready) holds the next one off until then. */
  private quietUntil = 0;
  private readonly probeIntervalMs: number;
  private trafficSinceTick = false;
  private peakInFlight = 0;
  private inFlight = 0;
  private closing = false;

  constructor(origin: string | URL, options: InstanceBalancedPoolOptions) {
    super();
    this.origin = new URL(origin);
    this.maxConnections = options.maxConnections ?? 64;
    this.probePath = options.probePath;
    this.clientOptions = options.clientOptions ?? {};
    this.onModeChange = options.onModeChange;
    this.probeIntervalMs = options.probeIntervalMs ?? 1000;
    this.timer = setInterval(() => this.tick(), this.probeIntervalMs);
    this.timer.unref();
  }

  stats(): PoolStats {
    const byInstance = this.groups();
    return {
      mode: this.mode,
      connections: this.connections.size,
      instances: [...byInstance.entries()].map(([id, list]) => ({
        id,
        connections: list.length,
        requests: this.requestsByInstance.get(id) ?? 0,
      })),
      probes: this.probesSent,
    };
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.closing) throw new Error('InstanceBalancedPool is closed');
    const connection = this.choose();
    connection.inFlight += 1;
    connection.lastUsed = performance.now();
    this.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    this.trafficSinceTick = true;
    let finished = false;
    const observing = new ObservingHandler(
      handler,
      (status, headers) => this.learn(connection, headers, status),
      () => {
        if (finished) return;
        finished = true;
        connection.inFlight -= 1;
        this.inFlight -= 1;
      },
    );
    return connection.client.dispatch(options, observing);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.closing = true;
    clearInterval(this.timer);
    const done = Promise.all([...this.connections].map((c) => c.client.close())).then(() => undefined);
    if (callback) {
      void done.then(callback);
      return;
    }
    return done;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.closing = true;
    clearInterval(this.timer);
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    const done = Promise.all([...this.connections].map((c) => c.client.destroy(err))).then(() => undefined);
    if (cb) {
      void done.then(cb);
      return;
    }
    return done;
  }

  private groups(): Map<string, Connection[]> {
    const groups = new Map<string, Connection[]>();
    for (const connection of this.connections) {
      if (connection.closed || connection.instance === undefined) continue;
      const list = groups.get(connection.instance) ?? [];
      list.push(connection);
      groups.set(connection.instance, list);
    }
    return groups;
  }

  private open(): Connection {
    const client = new undici.Client(this.origin, { ...this.clientOptions, pipelining: 1 });
    const connection = new Connection(client);
    const drop = (): void => this.drop(connection);
    // One Connection is one socket's life: after it closes, a reconnect could reach another instance.
    client.on('disconnect', drop);
    client.on('connectionError', drop);
    this.connections.add(connection);
    return connection;
  }

  private drop(connection: Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    this.connections.delete(connection);
    const instance = connection.instance;
    void connection.client.close().catch(() => undefined);
    // The last connection to an instance is gone: it may have been idle-closed rather than removed, so look again.
    if (instance !== undefined && !this.groups().has(instance) && !this.closing) this.startDiscovery();
  }

  private leastBusy(list: Connection[]): Connection | undefined {
    let best: Connection | undefined;
    for (const c of list) {
      if (c.closed) continue;
      // Among equally busy connections the least recently used, so every kept connection stays warm.
      if (!best || c.inFlight < best.inFlight || (c.inFlight === best.inFlight && c.lastUsed < best.lastUsed)) best = c;
    }
    return best;
  }

  private choose(): Connection {
    const open = [...this.connections].filter((c) => !c.closed);
    if (this.mode === 'pooled') {
      const best = this.leastBusy(open);
      if (best && (best.inFlight === 0 || open.length >= this.maxConnections)) return best;
      return this.open();
    }
    const groups = this.groups();
    if (groups.size === 0) {
      this.startDiscovery();
      const idle = open.find((c) => c.inFlight === 0);
      if (idle) return idle;
      return open.length < this.maxConnections ? this.open() : (this.leastBusy(open) ?? this.open());
    }
    const ids = [...groups.keys()].sort();
    const id = ids[this.turn % ids.length] as string;
    this.turn += 1;
    this.requestsByInstance.set(id, (this.requestsByInstance.get(id) ?? 0) + 1);
    const group = groups.get(id) as Connection[];
    const chosen = this.leastBusy(group) as Connection;
    // That instance has no free connection: grow capacity in the background (a new connection lands where kube-proxy
    // sends it, and is kept if its instance needs one), and queue this request on the instance's least busy one.
    if (chosen.inFlight > 0) this.probe();
    return chosen;
  }

  private learn(connection: Connection, headers: IncomingHttpHeaders, status = 200): void {
    // A closed Connection's socket is gone; undici sends requests queued on it over a new socket that kube-proxy
    // may give to another instance, so its answers say nothing about this connection or about a proxy in between.
    if (this.mode === 'pooled' || connection.closed) return;
    const raw = headers[instanceHeader];
    const id = Array.isArray(raw) ? raw[0] : raw;
    if (!id) {
      // Only a success says what the upstream is: a server that is closing answers its own bare 503, and a proxy
      // in between may answer an error of its own.
      if (status >= 200 && status < 300) this.switchToPooled(`the upstream sends no ${instanceHeader} header`);
      return;
    }
    if (connection.instance !== undefined && connection.instance !== id) {
      this.switchToPooled('instances change within one connection: a layer-7 proxy balances each request already');
      return;
    }
    if (connection.instance === undefined) {
      const known = this.groups().has(id);
      connection.instance = id;
      if (!known) {
        this.fruitlessProbes = 0;
        this.quietUntil = 0;
        this.startDiscovery();
      }
    }
  }

  private switchToPooled(reason: string): void {
    this.mode = 'pooled';
    this.discovering = false;
    this.onModeChange?.('pooled', reason);
  }

  private startDiscovery(): void {
    if (this.discovering || this.mode === 'pooled' || performance.now() < this.quietUntil) return;
    this.discovering = true;
    this.fruitlessProbes = 0;
    for (let i = 0; i < 4; i += 1) this.probe();
  }

  /** How many consecutive fruitless probes end a discovery: with K instances known, one more is missed with p ≈ (K/(K+1))^bound. */
  private discoveryBound(): number {
    return 6 * this.groups().size + 8;
  }

  private wanted(): number {
    const instances = Math.max(1, this.groups().size);
    return Math.max(1, Math.ceil(this.peakInFlight / instances));
  }

  private probe(): void {
    if (this.closing || this.mode === 'pooled') return;
    if (this.probesInFlight >= 4 || this.connections.size >= this.maxConnections) return;
    const connection = this.open();
    this.probesInFlight += 1;
    this.probesSent += 1;
    connection.inFlight += 1;
    const before = new Set(this.groups().keys());
    probeRequest(connection.client, this.probePath, 2000)
      .then((res) => {
        const raw = res.headers[instanceHeader];
        const id = Array.isArray(raw) ? raw[0] : raw;
        if (res.statusCode !== 200 || !id) {
          // Not ready, or not an instance that names itself: nothing found.
          this.fruitlessProbes += 1;
          this.drop(connection);
          return;
        }
        this.learn(connection, res.headers);
        const group = this.groups().get(id) ?? [];
        if (before.has(id)) {
          this.fruitlessProbes += 1;
          // A connection to an instance that already has enough is closed again.
          if (group.length > this.wanted()) this.drop(connection);
        }
      })
      .catch(() => {
        // Refused, reset or timed out: probing again at once would only spin; the next call or tick looks again.
        this.drop(connection);
        this.endDiscovery();
      })
      .finally(() => {
        connection.inFlight -= 1;
        this.probesInFlight -= 1;
        if (this.discovering) {
          if (this.fruitlessProbes < this.discoveryBound()) this.probe();
          else this.endDiscovery();
        }
      });
  }

  private endDiscovery(): void {
    this.discovering = false;
    // Every call starts a discovery while no instance is known: without a pause, an upstream that is down or not ready
    // would get a burst of probes per call.
    if (this.groups().size === 0) this.quietUntil = performance.now() + this.probeIntervalMs;
  }

  private tick(): void {
    if (!this.trafficSinceTick) return;
    this.trafficSinceTick = false;
    this.peakInFlight = this.inFlight;
    this.probe();
  }
}
