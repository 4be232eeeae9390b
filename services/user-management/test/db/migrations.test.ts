import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { migrationLockName, migrations, runMigrations } from '../../src/db/migrations.js';
import { testConfig } from '../support/helpers.js';

let db: TestDatabase;
const pools: DatabasePool[] = [];

function newPool(): DatabasePool {
  const pool = createDatabasePool(testConfig(db.env));
  pools.push(pool);
  return pool;
}

beforeAll(async () => {
  db = await createTestDatabase('ummigrate');
});

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await db?.drop();
});

async function tables(pool: DatabasePool): Promise<string[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name');
  return rows.map((row) => String(row.name));
}

describe('runMigrations', () => {
  it('applies every migration once, even when four processes start together, and is a no-op afterwards', async () => {
    // Separate pools: separate sessions, as separate replicas would have.
    const results = await Promise.all([newPool(), newPool(), newPool(), newPool()].map((pool) => runMigrations(pool)));
    const applied = results.flatMap((result) => result.applied).sort();
    expect(applied).toEqual(migrations.map((migration) => migration.version));
    expect(results.filter((result) => result.applied.length > 0)).toHaveLength(1);

    const pool = newPool();
    expect(await tables(pool)).toEqual(['notification_outbox', 'schema_migrations', 'users']);
    const [rows] = await pool.query<RowDataPacket[]>('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows.map((row) => [row.version, row.name])).toEqual([
      [1, 'create users'],
      [2, 'create notification_outbox'],
      [3, 'adopt a users table made by the Java service'],
    ]);

    expect(await runMigrations(pool)).toEqual({ applied: [] });
    expect(await runMigrations(newPool())).toEqual({ applied: [] });
  });

  it('applies only the new migration of a later release, and frees its lock', async () => {
    const pool = newPool();
    await runMigrations(pool);
    const next = [...migrations, { version: 99, name: 'add a test table', statements: ['CREATE TABLE IF NOT EXISTS later_table (id INT PRIMARY KEY)'] }];
    expect(await runMigrations(pool, undefined, next)).toEqual({ applied: [99] });
    expect(await runMigrations(newPool(), undefined, next)).toEqual({ applied: [] });
    expect(await tables(pool)).toContain('later_table');
    const [[lock]] = await pool.query<RowDataPacket[]>('SELECT IS_FREE_LOCK(?) AS free', [migrationLockName(db.database)]);
    expect(Number(lock?.free)).toBe(1);
  });

  it('releases the lock after a failing migration, so the next start can retry', async () => {
    const pool = newPool();
    const broken = [...migrations, { version: 9, name: 'broken', statements: ['CREATE TABLE nonsense ('] }];
    await expect(runMigrations(pool, undefined, broken)).rejects.toMatchObject({ code: 'ER_PARSE_ERROR' });
    const fixed = [...migrations, { version: 9, name: 'fixed', statements: ['CREATE TABLE IF NOT EXISTS fixed_table (id INT PRIMARY KEY)'] }];
    expect(await runMigrations(newPool(), undefined, fixed)).toEqual({ applied: [9] });
  });
});
