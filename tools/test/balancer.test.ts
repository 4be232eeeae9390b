import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createBalancer, type Balancer, type BalancerEvent } from '../src/balancer/index.js';
import { askWho, connectAndListen, healthPath, startBackend, until, type TestBackend } from './backends.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function backends(...names: string[]): Promise<TestBackend[]> {
  const started = await Promise.all(names.map(startBackend));
  for (const backend of started) cleanups.push(() => backend.close());
  return started;
}

async function balancerFor(list: TestBackend[], options: { healthIntervalMs?: number; events?: BalancerEvent[] } = {}): Promise<Balancer> {
  const balancer = await createBalancer({
    port: 0,
    backends: list.map((b) => ({ host: '127.0.0.1', port: b.port })),
    healthPath,
    healthIntervalMs: options.healthIntervalMs ?? 100,
    onEvent: (event) => options.events?.push(event),
  });
  cleanups.push(() => balancer.close());
  await Promise.all(list.map((b) => balancer.whenHealthy({ host: '127.0.0.1', port: b.port })));
  return balancer;
}

/** `count` requests, each on its own connection, `parallel` at a time: how many each backend answered. */
async function spread(port: number, count: number, parallel = 8): Promise<Record<string, number>> {
  const tally: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next += 1;
        const name = await askWho(port);
        tally[name] = (tally[name] ?? 0) + 1;
      }
    }),
  );
  return tally;
}

/**
 * A raw TCP backend: HTTP 200 on the health path; otherwise it answers only after the client's FIN, resets on
 * "boom", and after a FIN following "hold" answers nothing, keeping its side open.
 */
async function startHalfCloseBackend(): Promise<{ port: number; closed: Promise<string>[]; held: net.Socket[]; close(): Promise<void> }> {
  // How each connection ended on the backend's side: 'reset' or 'clean'.
  const closed: Promise<string>[] = [];
  const held: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    let ending = 'clean';
    closed.push(new Promise((resolve) => socket.on('close', () => resolve(ending))));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('error', (err: NodeJS.ErrnoException) => {
      ending = err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : (err.code ?? 'error');
    });
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith(`GET ${healthPath}`)) {
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nUP');
      } else if (received.includes('boom')) {
        socket.resetAndDestroy();
      }
    });
    socket.on('end', () => {
      if (received.includes('hold')) held.push(socket);
      else if (!socket.writableEnded) socket.end(`echo:${received}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const result = {
    port: (server.address() as net.AddressInfo).port,
    closed,
    held,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  cleanups.push(result.close);
  return result;
}

describe('balancer', () => {
  it('spreads new connections uniformly at random over the healthy backends, and counts them per backend', async () => {
    const list = await backends('a', 'b', 'c', 'd');
    const balancer = await balancerFor(list, { healthIntervalMs: 1000 });
    const total = 2000;
    const tally = await spread(balancer.port, total);

    const expected = total / list.length;
    const chiSquare = list.reduce((sum, b) => sum + ((tally[b.name] ?? 0) - expected) ** 2 / expected, 0);
    // 3 degrees of freedom: a uniform picker exceeds 30 with probability about 1e-6, so this does not flake, while
    // sending everything to one backend scores 6000. Round robin would pass here; the next test rules it out.
    expect(chiSquare).toBeLessThan(30);
    expect(Object.keys(tally).sort()).toEqual(['a', 'b', 'c', 'd']);

    const stats = balancer.backends();
    for (const b of list) {
      const state = stats.find((s) => s.port === b.port);
      expect(state).toMatchObject({ host: '127.0.0.1', healthy: true, opened: tally[b.name], failed: 0 });
      expect(b.served).toBe(tally[b.name]);
    }
    await until(() => balancer.backends().every((s) => s.active === 0), 'every connection to close');
  });

  it('picks independently for each connection, not in turn', async () => {
    const list = await backends('a', 'b');
    const balancer = await balancerFor(list, { healthIntervalMs: 1000 });
    const order: string[] = [];
    for (let i = 0; i < 200; i += 1) order.push(await askWho(balancer.port));
    const repeats = order.slice(1).filter((name, i) => name === order[i]).length;
    // A fair coin repeats the previous pick about 100 times in 199; round robin never does, stickiness always does.
    expect(repeats).toBeGreaterThan(60);
    expect(repeats).toBeLessThan(140);
  });

  it('gives no new connection to a backend whose health route stops answering 200, and uses it again once it does', async () => {
    const [a, b] = await backends('a', 'b');
    const balancer = await balancerFor([a!, b!]);
    b!.setHealthy(false);
    await until(() => balancer.backends().find((s) => s.port === b!.port)?.healthy === false, 'b to be marked unhealthy');
    const servedBefore = b!.served;

    expect(await spread(balancer.port, 200)).toEqual({ a: 200 });
    expect(b!.served).toBe(servedBefore);

    b!.setHealthy(true);
    await balancer.whenHealthy({ host: '127.0.0.1', port: b!.port });
    const tally = await spread(balancer.port, 200);
    expect(tally.b).toBeGreaterThan(0);
  });

  it('never uses a backend that has never been healthy', async () => {
    const [a, b] = await backends('a', 'b');
    b!.setHealthy(false);
    const balancer = await balancerFor([a!]);
    balancer.addBackend({ host: '127.0.0.1', port: b!.port });
    // Three probe intervals: b has answered 503 several times by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(balancer.backends().find((s) => s.port === b!.port)).toMatchObject({ healthy: false, opened: 0 });
    expect(await spread(balancer.port, 100)).toEqual({ a: 100 });
  });

  it('adds and removes backends at runtime; a removed one keeps its open connections but gets no new ones', async () => {
    const [a, b] = await backends('a', 'b');
    const events: BalancerEvent[] = [];
    const balancer = await balancerFor([], { events });

    expect(await connectAndListen(balancer.port, 'GET / HTTP/1.1\r\n\r\n')).toEqual({ data: '', ending: 'reset' });
    expect(events).toContainEqual({ type: 'no-backend' });

    balancer.addBackend({ host: '127.0.0.1', port: a!.port });
    await balancer.whenHealthy({ host: '127.0.0.1', port: a!.port });
    expect(await spread(balancer.port, 20)).toEqual({ a: 20 });

    balancer.addBackend({ host: '127.0.0.1', port: b!.port });
    await balancer.whenHealthy({ host: '127.0.0.1', port: b!.port });
    expect(balancer.backends().map((s) => s.port).sort()).toEqual([a!.port, b!.port].sort());

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const viaAgent = (): Promise<string> =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: balancer.port, path: '/who', agent }, (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString()));
            response.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
    const pinned = await viaAgent();
    const pinnedBackend = pinned === 'a' ? a! : b!;
    const other = pinned === 'a' ? 'b' : 'a';

    expect(balancer.removeBackend({ host: '127.0.0.1', port: pinnedBackend.port })).toBe(true);
    expect(balancer.removeBackend({ host: '127.0.0.1', port: pinnedBackend.port })).toBe(false);
    expect(events).toContainEqual({ type: 'removed', backend: `127.0.0.1:${pinnedBackend.port}` });
    expect(await viaAgent()).toBe(pinned);
    expect(await spread(balancer.port, 50)).toEqual({ [other]: 50 });
    expect(balancer.backends().map((s) => s.port)).toEqual([pinned === 'a' ? b!.port : a!.port]);
    expect(balancer.stats()[`127.0.0.1:${pinnedBackend.port}`]).toMatchObject({ active: 1 });
  });

  it('sends a connection a backend refuses to another healthy backend, and marks the refusing one unhealthy', async () => {
    const [a, gone] = await backends('a', 'gone');
    // Probes far apart, so the balancer only learns of the dead backend from a refused connection.
    const balancer = await balancerFor([a!, gone!], { healthIntervalMs: 60_000 });
    await gone!.close();

    expect(await spread(balancer.port, 40, 1)).toEqual({ a: 40 });
    const state = balancer.backends().find((s) => s.port === gone!.port);
    expect(state).toMatchObject({ healthy: false, opened: 0 });
    expect(state!.failed).toBeGreaterThanOrEqual(1);
  });

  it('keeps a half-closed connection open the other way, so an answer sent after the client FIN arrives', async () => {
    const backend = await startHalfCloseBackend();
    const balancer = await createBalancer({ port: 0, backends: [{ host: '127.0.0.1', port: backend.port }], healthPath, healthIntervalMs: 100 });
    cleanups.push(() => balancer.close());
    await balancer.whenHealthy({ host: '127.0.0.1', port: backend.port });

    expect(await connectAndListen(balancer.port, 'ping', true)).toEqual({ data: 'echo:ping', ending: 'end' });
    await until(() => balancer.backends()[0]!.active === 0, 'the connection to be closed on both sides');
    expect(balancer.backends()[0]).toMatchObject({ opened: 1, active: 0 });
  });

  it('passes a backend reset on to the client and a client reset on to the backend, and keeps serving', async () => {
    const backend = await startHalfCloseBackend();
    const balancer = await createBalancer({ port: 0, backends: [{ host: '127.0.0.1', port: backend.port }], healthPath, healthIntervalMs: 100 });
    cleanups.push(() => balancer.close());
    await balancer.whenHealthy({ host: '127.0.0.1', port: backend.port });

    expect(await connectAndListen(balancer.port, 'boom')).toEqual({ data: '', ending: 'reset' });

    const client = net.connect({ host: '127.0.0.1', port: balancer.port });
    client.on('error', () => {});
    await once(client, 'connect');
    client.write('partial');
    await until(() => balancer.backends()[0]!.active === 1, 'the connection to reach the backend');
    const backendSide = backend.closed.at(-1)!;
    client.resetAndDestroy();
    expect(await backendSide).toBe('reset');
    await until(() => balancer.backends()[0]!.active === 0, 'the balancer to drop the connection');

    expect(await connectAndListen(balancer.port, 'again', true)).toEqual({ data: 'echo:again', ending: 'end' });
  });

  it('close() stops listening, probing and every open connection', async () => {
    const [a] = await backends('a');
    const balancer = await balancerFor([a!]);
    const idle = connectAndListen(balancer.port);
    await until(() => balancer.backends()[0]?.active === 1, 'the idle connection to reach the backend');

    await balancer.close();
    expect((await idle).ending).toBe('reset');
    expect(balancer.backends()).toEqual([]);
    const refused = await new Promise<string>((resolve) => {
      net.connect({ host: '127.0.0.1', port: balancer.port }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('close() also lets go of a connection it has half-closed: its socket is closed, not left open', async () => {
    const backend = await startHalfCloseBackend();
    const balancer = await createBalancer({ port: 0, backends: [{ host: '127.0.0.1', port: backend.port }], healthPath, healthIntervalMs: 100 });
    cleanups.push(() => balancer.close());
    await balancer.whenHealthy({ host: '127.0.0.1', port: backend.port });
    const client = net.connect({ host: '127.0.0.1', port: balancer.port, allowHalfOpen: true });
    client.on('error', () => {});
    client.end('hold');
    // The balancer passed the FIN on, so its socket to the backend is half-closed, the backend's side still open.
    await until(() => backend.held.length === 1, 'the FIN to reach the backend');
    const backendSide = backend.closed.at(-1)!;

    await balancer.close();
    // A socket only marked destroyed, its descriptor left open, would take these writes without a word.
    const [held] = backend.held;
    const ending = await new Promise<string>((resolve) => {
      const writes = setInterval(() => held!.write('late'), 20);
      const giveUp = setTimeout(() => resolve('still open'), 3000);
      void backendSide.then((how) => {
        clearInterval(writes);
        clearTimeout(giveUp);
        resolve(how);
      });
    });
    expect(ending).toBe('reset');
  });

  it('rejects whenHealthy for a backend that never becomes healthy or is removed', async () => {
    const [a] = await backends('a');
    a!.setHealthy(false);
    const balancer = await createBalancer({ port: 0, healthPath, healthIntervalMs: 50 });
    cleanups.push(() => balancer.close());
    balancer.addBackend({ host: '127.0.0.1', port: a!.port });
    await expect(balancer.whenHealthy({ host: '127.0.0.1', port: a!.port }, 300)).rejects.toThrow(
      `127.0.0.1:${a!.port} did not answer ${healthPath} with 200 within 300 ms`,
    );
    const waiting = balancer.whenHealthy({ host: '127.0.0.1', port: a!.port });
    balancer.removeBackend({ host: '127.0.0.1', port: a!.port });
    await expect(waiting).rejects.toThrow('was removed before it became healthy');
    await expect(balancer.whenHealthy({ host: '127.0.0.1', port: 1 })).rejects.toThrow('127.0.0.1:1 is not a backend');
  });
});
