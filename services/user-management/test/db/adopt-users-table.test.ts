import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { buildApp } from '../../src/app.js';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { adoptUsersTable, duplicateEmailQuery } from '../../src/db/adopt-users-table.js';
import { runMigrations } from '../../src/db/migrations.js';
import { hashPassword, verifyPassword } from '../../src/users/password-hash.js';
import { closedPort, testConfig, validUser } from '../support/helpers.js';

let db: TestDatabase;
let pools: DatabasePool[];

beforeEach(async () => {
  db = await createTestDatabase('umadopt');
  pools = [];
});

afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await db?.drop();
});

function newPool(): DatabasePool {
  const pool = createDatabasePool(testConfig(db.env));
  pools.push(pool);
  return pool;
}

/**
 * A pool for `runMigrations` whose connections record every statement sent on them (the pool itself is a tracing
 * proxy, left as it is). Only `getConnection` is there: all that migrations use.
 */
function recording(pool: DatabasePool): { pool: DatabasePool; statements: string[] } {
  const statements: string[] = [];
  const getConnection = async () => {
    const connection = await pool.getConnection();
    const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
    const recordingQuery = (sql: unknown, ...rest: unknown[]) => {
      statements.push(typeof sql === 'string' ? sql : String((sql as { sql?: unknown }).sql));
      return query(sql, ...rest);
    };
    return new Proxy(connection, {
      get(target, property) {
        if (property === 'query') return recordingQuery;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  };
  return { pool: { getConnection } as unknown as DatabasePool, statements };
}

const changing = (statements: string[]) => statements.filter((sql) => /^\s*(ALTER|UPDATE|INSERT\s+INTO\s+users|DELETE|DROP)\b/i.test(sql));

async function adoptAgain(pool: DatabasePool): Promise<string[]> {
  const recorded = recording(pool);
  const connection = await recorded.pool.getConnection();
  try {
    await adoptUsersTable(connection);
  } finally {
    connection.release();
  }
  return recorded.statements;
}

async function showCreate(pool: DatabasePool): Promise<string> {
  const [[row]] = await pool.query<RowDataPacket[]>('SHOW CREATE TABLE users');
  return String(row?.['Create Table']);
}

async function shape(pool: DatabasePool): Promise<Record<string, string>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT column_name AS name, column_type AS type, is_nullable AS nullable, collation_name AS coll
     FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users'`,
  );
  return Object.fromEntries(rows.map((r) => [String(r.name), `${String(r.type)} ${r.nullable === 'YES' ? 'NULL' : 'NOT NULL'} ${String(r.coll)}`]));
}

/** A table as Hibernate `ddl-auto` makes it for the course's User entity: columns in its order, bit, nullable, 255. */
async function createJavaTable(pool: DatabasePool, options: string, columns = javaColumns): Promise<void> {
  await pool.query(`CREATE TABLE users (${columns.join(', ')}, PRIMARY KEY (username)) ${options}`);
}
const javaColumns = [
  'username varchar(255) NOT NULL',
  'email varchar(255) DEFAULT NULL',
  'enabled bit(1) DEFAULT NULL',
  'firstname varchar(255) DEFAULT NULL',
  'lastname varchar(255) DEFAULT NULL',
  'password varchar(255) DEFAULT NULL',
  'role varchar(255) DEFAULT NULL',
];

async function javaHash(): Promise<string> {
  // What Spring's BCryptPasswordEncoder wrote: the same algorithm under the `$2a$` prefix.
  return (await hashPassword(validUser.password)).replace(/^\$2b\$/, '$2a$');
}

async function insertJavaRows(pool: DatabasePool, rows: [string, string | null, 0 | 1 | null, string | null, string | null, string | null][]): Promise<string> {
  const hash = await javaHash();
  for (const [username, email, enabled, firstname, lastname, role] of rows) {
    await pool.query(`INSERT INTO users (username, email, enabled, firstname, lastname, password, role) VALUES (?, ?, ${enabled === null ? 'NULL' : `b'${enabled}'`}, ?, ?, ?, ?)`, [
      username,
      email,
      firstname,
      lastname,
      hash,
      role,
    ]);
  }
  return hash;
}

async function allRows(pool: DatabasePool): Promise<RowDataPacket[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT username, email, enabled + 0 AS enabled, firstname, lastname, password, role FROM users ORDER BY username');
  return rows;
}

describe('a users table made by the course Java service', () => {
  it.each([
    ['InnoDB, latin1 (MariaDB default)', 'ENGINE=InnoDB DEFAULT CHARSET=latin1'],
    ['MyISAM, utf8mb3', 'ENGINE=MyISAM DEFAULT CHARSET=utf8mb3'],
    ['InnoDB, utf8mb4_general_ci', 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci'],
  ])('is adopted without losing data (%s), by one of two replicas, and then works through the app', async (_label, options) => {
    const setup = newPool();
    await createJavaTable(setup, options);
    const hash = await insertJavaRows(setup, [
      ['alice', 'Alice@Example.com', 0, 'Alice', null, 'ROLE_ADMIN'],
      ['bob', 'bob@example.com', 1, 'Zoë', 'Brontë', null],
      ['carol', 'carol@example.com', null, 'Carol', 'C', 'ROLE_USER'],
    ]);

    const results = await Promise.all([runMigrations(newPool()), runMigrations(newPool())]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual([1, 2, 3]);

    const pool = newPool();
    expect(await shape(pool)).toEqual({
      username: 'varchar(255) NOT NULL utf8mb4_unicode_ci',
      email: 'varchar(255) NOT NULL utf8mb4_unicode_ci',
      enabled: 'tinyint(1) NOT NULL null',
      firstname: 'varchar(255) NOT NULL utf8mb4_unicode_ci',
      lastname: 'varchar(255) NOT NULL utf8mb4_unicode_ci',
      password: 'varchar(255) NOT NULL utf8mb4_unicode_ci',
      role: 'varchar(255) NOT NULL utf8mb4_unicode_ci',
    });
    const created = await showCreate(pool);
    expect(created).toMatch(/ENGINE=InnoDB/);
    expect(created).toMatch(/UNIQUE KEY `uq_users_email` \(`email`\)/);
    expect(created).toMatch(/`lastname` varchar\(255\) NOT NULL DEFAULT ''/);
    expect(created).toMatch(/`enabled` tinyint\(1\) NOT NULL DEFAULT 1/);
    // b'0' stays 0, b'1' stays 1, NULL enabled becomes TRUE, NULL lastname '' and NULL role ROLE_USER (the API's
    // values for an omitted field); everything else, the $2a$ hash and non-ASCII names included, is as it was.
    expect((await allRows(pool)).map((row) => ({ ...row }))).toEqual([
      { username: 'alice', email: 'Alice@Example.com', enabled: 0, firstname: 'Alice', lastname: '', password: hash, role: 'ROLE_ADMIN' },
      { username: 'bob', email: 'bob@example.com', enabled: 1, firstname: 'Zoë', lastname: 'Brontë', password: hash, role: 'ROLE_USER' },
      { username: 'carol', email: 'carol@example.com', enabled: 1, firstname: 'Carol', lastname: 'C', password: hash, role: 'ROLE_USER' },
    ]);
    expect(await verifyPassword(validUser.password, hash)).toBe(true);

    const app = buildApp(testConfig(db.env, { NOTIFICATION_SERVICE_PORT: String(await closedPort()) }), { logging: false, outbox: false });
    try {
      const alice = await app.inject({ method: 'GET', url: '/usermgmt/user/alice' });
      expect(alice.statusCode).toBe(200);
      expect(alice.json()).toMatchObject({ username: 'alice', enabled: false, lastname: '', role: 'ROLE_ADMIN' });
      expect((await app.inject({ method: 'GET', url: '/usermgmt/status/alice' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/usermgmt/user/alice' })).json()).toMatchObject({ enabled: true });
      expect((await app.inject({ method: 'GET', url: '/usermgmt/status/alice' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/usermgmt/user/alice' })).json()).toMatchObject({ enabled: false });

      const twin = await app.inject({ method: 'POST', url: '/usermgmt/user', payload: { ...validUser, username: 'alice2', email: 'ALICE@example.COM' } });
      expect(twin.statusCode).toBe(400);
      expect(twin.json()).toMatchObject({ message: 'User with email ALICE@example.COM already exists!' });
    } finally {
      await app.close();
    }
    await expect(
      pool.query("INSERT INTO users (username, password, enabled, role, email, firstname) VALUES ('alice3', 'x', 1, 'r', 'alice@EXAMPLE.com', 'A')"),
    ).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });

    // Adopted: starting again changes nothing, and so does the adoption itself run once more.
    const before = await showCreate(pool);
    const again = recording(newPool());
    expect(await runMigrations(again.pool)).toEqual({ applied: [] });
    expect(changing(again.statements)).toEqual([]);
    expect(changing(await adoptAgain(newPool()))).toEqual([]);
    expect(await showCreate(pool)).toBe(before);
  });
});

describe('a users table that cannot be adopted without losing data', () => {
  const tail = 'The table was not changed: correct it, then start again (docs/user-management.md, "Coming from the course\'s database").';

  it('refuses to start on e-mails shared under the new collation, names the table and the query, changes nothing, and adopts once fixed', async () => {
    const pool = newPool();
    await createJavaTable(pool, 'ENGINE=InnoDB DEFAULT CHARSET=latin1');
    await insertJavaRows(pool, [
      ['alice', 'a@example.com', 0, 'Alice', null, 'ROLE_USER'],
      ['bob', 'A@EXAMPLE.COM', 1, 'Bob', 'B', 'ROLE_USER'],
      ['carol', 'carol@example.com', 1, 'Carol', null, null],
    ]);
    const before = { create: await showCreate(pool), rows: await allRows(pool) };

    const failure = await runMigrations(newPool()).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failure?.message).toBe(
      `Cannot adopt table users of database ${db.database}, made by another service such as the course's Java one: ` +
        'E-mail addresses shared by several rows (compared as utf8mb4_unicode_ci, which ignores case), so e-mail cannot be made unique: 1; ' +
        'find them with: SELECT CONVERT(email USING utf8mb4) COLLATE utf8mb4_unicode_ci AS email, COUNT(*) AS users, GROUP_CONCAT(username) AS usernames FROM users GROUP BY 1 HAVING COUNT(*) > 1; ' +
        tail,
    );
    expect(failure?.message).not.toContain('@');
    expect(await showCreate(pool)).toBe(before.create);
    expect(await allRows(pool)).toEqual(before.rows);
    const [versions] = await pool.query<RowDataPacket[]>('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.map((row) => row.version)).toEqual([1, 2]);

    // The query in the message finds the rows; once the operator fixes them, the next start adopts the table.
    const [shared] = await pool.query<RowDataPacket[]>(duplicateEmailQuery);
    expect(shared.map((row) => [String(row.usernames).split(',').sort().join(','), Number(row.users)])).toEqual([['alice,bob', 2]]);
    await pool.query("UPDATE users SET email = 'bob@example.com' WHERE username = 'bob'");
    expect(await runMigrations(newPool())).toEqual({ applied: [3] });
  });

  it.each([
    ['a missing column', javaColumns.filter((c) => !c.startsWith('role')), 'It has no column role. '],
    ['a NULL e-mail', javaColumns, 'Rows with a NULL email, which has no default to take its place: 1; find them with: SELECT username FROM users WHERE email IS NULL; '],
    [
      'an enabled that is neither 0 nor 1',
      javaColumns.map((c) => (c.startsWith('enabled') ? 'enabled int DEFAULT NULL' : c)),
      'Rows whose enabled is neither 0 nor 1: 1; find them with: SELECT username, enabled + 0 AS enabled FROM users WHERE enabled NOT IN (0, 1); ',
    ],
    ['a column the service does not write', [...javaColumns, 'version int NOT NULL'], 'Column version is NOT NULL without a default, and this service does not write it; give it a default or drop it. '],
  ])('refuses to start on %s and changes nothing', async (_label, columns, problem) => {
    const pool = newPool();
    await createJavaTable(pool, 'ENGINE=InnoDB DEFAULT CHARSET=latin1', columns);
    const hasRole = columns.some((c) => c.startsWith('role'));
    const hasVersion = columns.some((c) => c.startsWith('version'));
    const enabledInt = columns.some((c) => c.startsWith('enabled int'));
    await pool.query(
      `INSERT INTO users (username, email, enabled, firstname, lastname, password${hasRole ? ', role' : ''}${hasVersion ? ', version' : ''})
       VALUES ('alice', ?, ${enabledInt ? 2 : "b'1'"}, 'Alice', NULL, 'x'${hasRole ? ", 'ROLE_USER'" : ''}${hasVersion ? ', 0' : ''})`,
      [problem.includes('NULL email') ? null : 'alice@example.com'],
    );
    const before = { create: await showCreate(pool), rows: await pool.query<RowDataPacket[]>('SELECT * FROM users').then(([rows]) => rows) };
    await expect(runMigrations(newPool())).rejects.toThrow(
      `Cannot adopt table users of database ${db.database}, made by another service such as the course's Java one: ${problem}${tail}`,
    );
    expect(await showCreate(pool)).toBe(before.create);
    expect((await pool.query<RowDataPacket[]>('SELECT * FROM users'))[0]).toEqual(before.rows);
  });
});

describe('a users table this service made', () => {
  it('is never altered: not when the database is new, not on the next start, not by the adoption run again', async () => {
    const pool = newPool();
    const first = recording(pool);
    expect(await runMigrations(first.pool)).toEqual({ applied: [1, 2, 3] });
    expect(first.statements.some((sql) => /information_schema\.columns/.test(sql))).toBe(true);
    expect(changing(first.statements)).toEqual([]);
    const before = { create: await showCreate(pool), shape: await shape(pool) };

    expect(await runMigrations(newPool())).toEqual({ applied: [] });
    expect(changing(await adoptAgain(newPool()))).toEqual([]);
    expect(await showCreate(pool)).toBe(before.create);
    expect(await shape(pool)).toEqual(before.shape);
  });
});
