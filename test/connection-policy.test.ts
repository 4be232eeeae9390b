import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, request, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InstanceBalancedPool, instanceHeader, type PoolMode } from '../packages/service-kit/src/connection-policy/instance-balanced-pool.js';
import { createBalancer, type Balancer } from '../tools/src/balancer/index.js';

interface Backend {
  id: string;
  version: 'V1' | 'V2';
  server: Server;
  port: number;
}

/** A notification stand-in: names itself in the instance header, as the real service does. */
async function startBackend(id: string, version: 'V1' | 'V2'): Promise<Backend> {
  const server = createServer((req, res) => {
    res.setHeader(instanceHeader, id);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ appversion: version }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { id, version, server, port: (server.address() as AddressInfo).port };
}

async function stopBackend(backend: Backend): Promise<void> {
  await new Promise((resolve) => {
    backend.server.close(resolve);
    backend.server.closeIdleConnections();
  });
}

async function versionOf(dispatcher: Dispatcher, origin: string): Promise<string> {
  const res = await request(`${origin}/notification/xray`, { dispatcher });
  const body = (await res.body.json()) as { appversion: string };
  expect(res.statusCode).toBe(200);
  return body.appversion;
}

/** Runs `total` calls from `clients` concurrent callers and returns the V2 share in percent. */
async function v2Share(dispatcher: Dispatcher, origin: string, total: number, clients: number): Promise<number> {
  let next = 0;
  let v2 = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        next += 1;
        if ((await versionOf(dispatcher, origin)) === 'V2') v2 += 1;
      }
    }),
  );
  return (v2 / total) * 100;
}

describe('connection policy through a connection-balancing ClusterIP stand-in', () => {
  const backends: Backend[] = [];
  let balancer: Balancer;
  let origin: string;
  const pools: Dispatcher[] = [];

  async function useRow(v1: number, v2: number): Promise<void> {
    for (const b of backends.splice(0)) {
      balancer.removeBackend({ host: '127.0.0.1', port: b.port });
      await stopBackend(b);
    }
    for (let i = 0; i < v1 + v2; i += 1) {
      const backend = await startBackend(`${i < v1 ? 'v1' : 'v2'}-${i}`, i < v1 ? 'V1' : 'V2');
      backends.push(backend);
      balancer.addBackend({ host: '127.0.0.1', port: backend.port });
      await balancer.whenHealthy({ host: '127.0.0.1', port: backend.port });
    }
  }

  beforeAll(async () => {
    balancer = await createBalancer({ port: 0, healthPath: '/notification/health/ready', healthIntervalMs: 200 });
    origin = `http://127.0.0.1:${balancer.port}`;
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  afterAll(async () => {
    for (const b of backends.splice(0)) await stopBackend(b);
    await balancer.close();
  });

  it('plain keep-alive pooling pins its calls to the few pods its first connections reached', async () => {
    await useRow(2, 2);
    const opened = (): number => Object.values(balancer.stats()).reduce((sum, s) => sum + s.opened, 0);
    const before = opened();
    const pool = new Pool(origin, { connections: 8 });
    pools.push(pool);
    await v2Share(pool, origin, 400, 1);
    // 400 calls, a handful of connections: the split is decided by where those few landed, not by the replica counts.
    expect(opened() - before).toBeLessThanOrEqual(8);
  });

  for (const [v1, v2] of [
    [4, 0],
    [3, 1],
    [2, 2],
    [1, 3],
    [0, 4],
  ] as const) {
    it(`the instance-balanced pool gives row ${v1}/${v2} its share, sequentially and with 16 clients`, async () => {
      await useRow(v1, v2);
      const expected = (v2 / (v1 + v2)) * 100;
      for (const clients of [1, 16]) {
        const pool = new InstanceBalancedPool(origin, { probePath: '/notification/health/ready' });
        pools.push(pool);
        const share = await v2Share(pool, origin, 1000, clients);
        expect(Math.abs(share - expected), `observed ${share}% with ${clients} client(s)`).toBeLessThanOrEqual(5);
        const stats = pool.stats();
        expect(stats.mode).toBe('instance');
        expect(stats.instances.map((i) => i.id).sort()).toEqual(backends.map((b) => b.id).sort());
        // Connections are reused: far fewer than calls.
        expect(stats.connections).toBeLessThanOrEqual(64);
      }
    });
  }

  it('follows a pod that goes away and one that arrives', async () => {
    await useRow(2, 2);
    const pool = new InstanceBalancedPool(origin, { probePath: '/notification/health/ready', probeIntervalMs: 100 });
    pools.push(pool);
    await v2Share(pool, origin, 200, 1);
    const gone = backends.shift() as Backend;
    balancer.removeBackend({ host: '127.0.0.1', port: gone.port });
    await stopBackend(gone);
    const arrived = await startBackend('v2-new', 'V2');
    backends.push(arrived);
    balancer.addBackend({ host: '127.0.0.1', port: arrived.port });
    await balancer.whenHealthy({ host: '127.0.0.1', port: arrived.port });
    // Calls until the pool has found the new pod; the probe interval is 100 ms.
    for (let i = 0; i < 100 && !pool.stats().instances.some((s) => s.id === 'v2-new'); i += 1) {
      await versionOf(pool, origin);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(pool.stats().instances.map((i) => i.id).sort()).toEqual(['v1-1', 'v2-2', 'v2-3', 'v2-new']);
    const share = await v2Share(pool, origin, 1000, 4);
    expect(Math.abs(share - 75)).toBeLessThanOrEqual(5);
  });

  it('keeps balancing by instance when an error answer comes without the header (a replica closing)', async () => {
    let n = 0;
    const closing = createServer((req, res) => {
      n += 1;
      if (n % 5 === 0) {
        res.writeHead(503, { connection: 'close' }).end('{"message":"Service Unavailable"}');
        return;
      }
      res.setHeader(instanceHeader, 'only');
      res.end('{"appversion":"V1"}');
    });
    await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(closing.address() as AddressInfo).port}`;
      const pool = new InstanceBalancedPool(url, { probePath: '/' });
      pools.push(pool);
      const statuses = [];
      for (let i = 0; i < 20; i += 1) {
        const res = await request(`${url}/notification/xray`, { dispatcher: pool });
        await res.body.text();
        statuses.push(res.statusCode);
      }
      expect(statuses).toContain(503);
      expect(pool.stats().mode).toBe('instance');
    } finally {
      closing.closeAllConnections();
      await new Promise((resolve) => closing.close(resolve));
    }
  });

  it('keeps balancing by instance when a draining replica closes a connection that has a request queued', async () => {
    // A replica that is shutting down answers with `Connection: close`; undici sends the request queued behind that
    // answer over a new socket, which the balancer may give to another replica. That is a new connection, not a
    // layer-7 proxy, and must not switch the pool to plain pooling.
    await useRow(1, 1);
    const draining = createServer((req, res) => {
      res.setHeader(instanceHeader, 'draining');
      res.setHeader('connection', 'close');
      res.end('{"appversion":"V1"}');
    });
    await new Promise<void>((resolve) => draining.listen(0, '127.0.0.1', resolve));
    const drainingTarget = { host: '127.0.0.1', port: (draining.address() as AddressInfo).port };
    try {
      balancer.addBackend(drainingTarget);
      await balancer.whenHealthy(drainingTarget);
      const changes: string[] = [];
      const pool = new InstanceBalancedPool(origin, { probePath: '/notification/health/ready', onModeChange: (_mode, why) => changes.push(why) });
      pools.push(pool);
      await v2Share(pool, origin, 600, 16);
      expect(changes).toEqual([]);
      expect(pool.stats().mode).toBe('instance');
    } finally {
      balancer.removeBackend(drainingTarget);
      draining.closeAllConnections();
      await new Promise((resolve) => draining.close(resolve));
    }
  });

  it('does not spin on an upstream that refuses connections: one burst of probes, then one a probe interval', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const pool = new InstanceBalancedPool(url, { probePath: '/notification/health/ready', probeIntervalMs: 200 });
    pools.push(pool);
    await expect(request(`${url}/notification/xray`, { dispatcher: pool })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await new Promise((resolve) => setTimeout(resolve, 450));
    // The call's discovery (4 probes) and the one tick that followed traffic (1); a probe loop would have made thousands.
    const probes = pool.stats().probes;
    expect(probes).toBeGreaterThanOrEqual(4);
    expect(probes).toBeLessThanOrEqual(5);
  });

  it('does not spin on an upstream that is up but not ready: a bounded discovery, then a pause', async () => {
    let probed = 0;
    const unready = createServer((req, res) => {
      if (req.url === '/notification/health/ready') probed += 1;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"DOWN"}');
    });
    await new Promise<void>((resolve) => unready.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(unready.address() as AddressInfo).port}`;
      const pool = new InstanceBalancedPool(url, { probePath: '/notification/health/ready', probeIntervalMs: 200 });
      pools.push(pool);
      for (let i = 0; i < 3; i += 1) {
        const res = await request(`${url}/notification/xray`, { dispatcher: pool });
        await res.body.text();
        expect(res.statusCode).toBe(503);
      }
      await new Promise((resolve) => setTimeout(resolve, 450));
      // One discovery ends after 8 fruitless probes (a few more were already on their way); the calls that followed
      // it fell in its pause, and one tick probed once.
      expect(pool.stats().probes).toBe(probed);
      expect(probed).toBeGreaterThanOrEqual(8);
      expect(probed).toBeLessThanOrEqual(12);
      expect(pool.stats().mode).toBe('instance');
    } finally {
      unready.closeAllConnections();
      await new Promise((resolve) => unready.close(resolve));
    }
  });

  it('falls back to plain pooling behind a layer-7 proxy or an upstream without the header', async () => {
    let n = 0;
    const proxyLike = createServer((req, res) => {
      n += 1;
      // A different instance on every request of the same connection, as an Envoy sidecar would give.
      res.setHeader(instanceHeader, `pod-${n % 3}`);
      res.end('{"appversion":"V1"}');
    });
    const silent = createServer((req, res) => res.end('{"appversion":"V1"}'));
    for (const s of [proxyLike, silent]) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      for (const [server, reason] of [
        [proxyLike, 'layer-7 proxy'],
        [silent, 'no x-instance-id header'],
      ] as const) {
        const changes: [PoolMode, string][] = [];
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const pool = new InstanceBalancedPool(url, { probePath: '/', onModeChange: (mode, why) => changes.push([mode, why]) });
        pools.push(pool);
        for (let i = 0; i < 20; i += 1) expect(await versionOf(pool, url)).toBe('V1');
        expect(pool.stats().mode).toBe('pooled');
        expect(changes).toHaveLength(1);
        expect(changes[0]?.[1]).toContain(reason);
      }
    } finally {
      for (const s of [proxyLike, silent]) {
        s.closeAllConnections();
        await new Promise((resolve) => s.close(resolve));
      }
    }
  });
});
