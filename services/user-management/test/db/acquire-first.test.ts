import net from 'node:net';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { buildApp } from '../../src/app.js';
import { acquireTimeoutMessage, databaseUnavailableMessage } from '../../src/db/database-errors.js';
import { runMigrations } from '../../src/db/migrations.js';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { testConfig } from '../support/helpers.js';

let db: TestDatabase;
let pool: DatabasePool | undefined;

beforeAll(async () => {
  db = await createTestDatabase('umacquire');
});

afterEach(async () => {
  await pool?.end();
  pool = undefined;
});

afterAll(async () => {
  await db?.drop();
});

/** The pool of the service, with one connection, so every statement shows which connection it ran on. */
function singleConnectionPool(overrides: Record<string, string> = {}): DatabasePool {
  pool = createDatabasePool(testConfig(db.env, { DB_CONNECTION_LIMIT: '1', AWS_XRAY_SDK_ENABLED: 'false', ...overrides }));
  return pool;
}

async function connectionId(p: DatabasePool): Promise<number> {
  const [[row]] = await p.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
  return Number(row!.id);
}

describe('the pool takes a connection before each query and gives it back after', () => {
  it('never hands a statement to mysql2\'s Pool.query or Pool.execute, which make it before a connection is free', async () => {
    const p = singleConnectionPool();
    const poolQuery = vi.spyOn(p.pool, 'query');
    const poolExecute = vi.spyOn(p.pool, 'execute');
    const [rows] = await p.query<RowDataPacket[]>('SELECT 1 AS one');
    const [prepared] = await p.execute<RowDataPacket[]>('SELECT 2 AS two');
    expect(rows).toEqual([{ one: 1 }]);
    expect(prepared).toEqual([{ two: 2 }]);
    expect(poolQuery).not.toHaveBeenCalled();
    expect(poolExecute).not.toHaveBeenCalled();
  });

  it('returns the connection after a result and after an error, so one connection serves query after query', async () => {
    const p = singleConnectionPool();
    const first = await connectionId(p);
    const [rows] = await p.query<RowDataPacket[]>('SELECT ? AS a, ? AS b', [1, 'two']);
    expect(rows).toEqual([{ a: 1, b: 'two' }]);
    await expect(p.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: 'ER_NO_SUCH_TABLE' });
    const [prepared] = await p.execute<RowDataPacket[]>('SELECT ? AS c', ['three']);
    expect(prepared).toEqual([{ c: 'three' }]);
    await expect(p.execute('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: 'ER_NO_SUCH_TABLE' });
    expect(await connectionId(p)).toBe(first);
  });

  it('drops the connection after a read-only error, as mysql2 does, so the next query runs on a new one', async () => {
    const p = singleConnectionPool();
    await p.query('CREATE TABLE IF NOT EXISTS acquire_probe (id INT PRIMARY KEY)');
    const first = await connectionId(p);
    await p.query('SET SESSION TRANSACTION READ ONLY');
    await expect(p.query('INSERT INTO acquire_probe VALUES (1)')).rejects.toMatchObject({ errno: 1792 });
    const second = await connectionId(p);
    expect(second).not.toBe(first);
    await p.query('INSERT INTO acquire_probe VALUES (2)');
    const [rows] = await p.query<RowDataPacket[]>('SELECT id FROM acquire_probe ORDER BY id');
    expect(rows).toEqual([{ id: 2 }]);
  });

  it('keeps the queue limit: with the connection busy and the queue full, one more query is refused at once', async () => {
    const p = singleConnectionPool({ DB_QUEUE_LIMIT: '1' });
    const busy = p.query<RowDataPacket[]>('SELECT SLEEP(0.3) AS slept');
    const queued = p.query<RowDataPacket[]>('SELECT 2 AS n');
    await expect(p.query('SELECT 3 AS n')).rejects.toThrow('Queue limit reached.');
    expect((await busy)[0]).toEqual([{ slept: 0 }]);
    expect((await queued)[0]).toEqual([{ n: 2 }]);
  });
});

describe('the wait for a connection is bounded by DB_ACQUIRE_TIMEOUT_MS, not by the queue', () => {
  it('refuses a query still waiting after DB_ACQUIRE_TIMEOUT_MS, and the connection it gets later goes back to the pool', async () => {
    const p = singleConnectionPool({ DB_ACQUIRE_TIMEOUT_MS: '200' });
    const held = await p.getConnection();
    const started = performance.now();
    await expect(p.query('SELECT 2 AS n')).rejects.toThrow(acquireTimeoutMessage);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    await expect(p.getConnection()).rejects.toThrow(acquireTimeoutMessage);
    held.release();
    // Both abandoned requests are still in mysql2's queue: each gets the one connection and gives it straight back.
    const [rows] = await p.query<RowDataPacket[]>('SELECT 3 AS n');
    expect(rows).toEqual([{ n: 3 }]);
  });

  it('when the host does not answer, ends every wait at DB_ACQUIRE_TIMEOUT_MS instead of one request per connect timeout', async () => {
    // Accepts and never sends MySQL's greeting: a host that does not answer.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as net.AddressInfo).port;
    const p = createDatabasePool(
      testConfig(
        { DB_HOSTNAME: '127.0.0.1', DB_PORT: String(port), DB_NAME: 'none', DB_USERNAME: 'none', DB_PASSWORD: '' },
        { DB_CONNECTION_LIMIT: '1', DB_CONNECT_TIMEOUT_MS: '5000', DB_ACQUIRE_TIMEOUT_MS: '300', AWS_XRAY_SDK_ENABLED: 'false' },
      ),
    );
    try {
      // mysql2 alone would fail these at 5, 10 and 15 s, with ETIMEDOUT.
      const outcomes = await Promise.allSettled([1, 2, 3].map((n) => p.query('SELECT ? AS n', [n])));
      expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'answered'))).toEqual([
        acquireTimeoutMessage,
        acquireTimeoutMessage,
        acquireTimeoutMessage,
      ]);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
      await p.end().catch(() => undefined);
    }
  });

  it('answers a burst of 200 concurrent reads with the default limits, none turned away by the queue', async () => {
    const config = testConfig(db.env, { AWS_XRAY_SDK_ENABLED: 'false' });
    expect([config.DB_CONNECTION_LIMIT, config.DB_QUEUE_LIMIT, config.DB_ACQUIRE_TIMEOUT_MS]).toEqual([10, 1000, 5000]);
    const migrator = createDatabasePool(config);
    await runMigrations(migrator);
    await migrator.end();
    const app = buildApp(config, { logging: false, outbox: false });
    try {
      await app.ready();
      // All 200 ask for a connection in the same turn of the event loop: 190 wait, more than the old limit of 100.
      const responses = await Promise.all(Array.from({ length: 200 }, () => app.inject({ url: '/usermgmt/users' })));
      const statuses = responses.map((res) => res.statusCode);
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      expect(responses[199]?.json()).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('answers 503 with the usual body when the wait ends, and 200 once a connection is free', async () => {
    const config = testConfig(db.env, { DB_CONNECTION_LIMIT: '1', DB_ACQUIRE_TIMEOUT_MS: '200', AWS_XRAY_SDK_ENABLED: 'false' });
    const appPool = createDatabasePool(config);
    const app = buildApp(config, { logging: false, outbox: false, pool: appPool });
    try {
      await app.ready();
      const held = await appPool.getConnection();
      const refused = await app.inject({ url: '/usermgmt/users' });
      expect(refused.statusCode).toBe(503);
      expect(refused.json()).toMatchObject({
        status: 'SERVICE_UNAVAILABLE',
        statusCode: 503,
        message: databaseUnavailableMessage,
        debugMessage: 'The database did not answer (POOL)',
      });
      held.release();
      const answered = await app.inject({ url: '/usermgmt/users' });
      expect(answered.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
