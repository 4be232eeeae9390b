import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
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
