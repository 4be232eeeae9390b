import { createHash } from 'node:crypto';
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { DatabasePool } from './pool.js';
import { adoptUsersTable } from './adopt-users-table.js';

export interface Migration {
  version: number;
  name: string;
  /** Statements run in order. Each must be safe to repeat (IF NOT EXISTS), since MySQL commits DDL at once. */
  statements: string[];
  /** Run after the statements, for a change that depends on what the database holds; safe to repeat too. */
  run?: (connection: PoolConnection, log?: MigrationLog) => Promise<void>;
}

/** Portable SQL: MySQL 8.4 and MariaDB 10.11 both accept every statement here. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'create users',
    statements: [
      `CREATE TABLE IF NOT EXISTS users (
        username VARCHAR(20) NOT NULL,
        password VARCHAR(100) NOT NULL,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        role VARCHAR(50) NOT NULL,
        email VARCHAR(254) NOT NULL,
        firstname VARCHAR(20) NOT NULL,
        lastname VARCHAR(20) NOT NULL DEFAULT '',
        PRIMARY KEY (username),
        UNIQUE KEY uq_users_email (email)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
    ],
  },
  {
    version: 2,
    name: 'create notification_outbox',
    statements: [
      `CREATE TABLE IF NOT EXISTS notification_outbox (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        kind VARCHAR(50) NOT NULL,
        payload TEXT NOT NULL,
        status VARCHAR(10) NOT NULL DEFAULT 'pending',
        attempts INT UNSIGNED NOT NULL DEFAULT 0,
        next_attempt_at DATETIME(3) NOT NULL,
        claim_token CHAR(32) NULL,
        last_error VARCHAR(500) NULL,
        created_at DATETIME(3) NOT NULL,
        sent_at DATETIME(3) NULL,
        PRIMARY KEY (id),
        KEY ix_outbox_due (status, next_attempt_at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
    ],
  },
  {
    version: 3,
    // Migration 1 keeps an existing users table as it is: one made by the course's Java service (Hibernate) has
    // `enabled bit`, nullable columns and no unique e-mail. This converts it, or refuses to start (adopt-users-table.ts).
    name: 'adopt a users table made by the Java service',
    statements: [],
    run: adoptUsersTable,
  },
];

export interface MigrationLog {
  info(obj: object, msg: string): void;
}

export interface MigrationResult {
  applied: number[];
}

const lockTimeoutSeconds = 60;

/** GET_LOCK names are server-wide and at most 64 characters: one lock per database, whatever its name. */
export function migrationLockName(database: string): string {
  return `usermgmt-migrate-${createHash('sha256').update(database).digest('hex').slice(0, 32)}`;
}

async function applyPending(connection: PoolConnection, list: readonly Migration[], log?: MigrationLog): Promise<number[]> {
  await connection.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
      version INT UNSIGNED NOT NULL,
      name VARCHAR(200) NOT NULL,
      applied_at DATETIME(3) NOT NULL,
      PRIMARY KEY (version)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  );
  const [rows] = await connection.query<RowDataPacket[]>('SELECT version FROM schema_migrations');
  const done = new Set(rows.map((row) => Number(row.version)));
  const applied: number[] = [];
  for (const migration of [...list].sort((a, b) => a.version - b.version)) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements) await connection.query(statement);
    await migration.run?.(connection, log);
    await connection.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(3))', [
      migration.version,
      migration.name,
    ]);
    log?.info({ version: migration.version, migration: migration.name }, 'migration applied');
    applied.push(migration.version);
  }
  return applied;
}

/**
 * Brings the schema up to date. A named lock serializes replicas that start together: the second waits,
 * then finds nothing left to do. Running it again is a no-op.
 */
export async function runMigrations(pool: DatabasePool, log?: MigrationLog, list: readonly Migration[] = migrations): Promise<MigrationResult> {
  const connection = await pool.getConnection();
  let healthy = true;
  try {
    const [[database]] = await connection.query<RowDataPacket[]>('SELECT DATABASE() AS name');
    const name = migrationLockName(String(database?.name ?? ''));
    const [[lock]] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS acquired', [name, lockTimeoutSeconds]);
    if (Number(lock?.acquired) !== 1) {
      throw new Error(`Another process held the migration lock for more than ${lockTimeoutSeconds} s`);
    }
    try {
      return { applied: await applyPending(connection, list, log) };
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [name]).catch(() => {
        healthy = false;
      });
    }
  } catch (err) {
    healthy = false;
    throw err;
  } finally {
    // A connection that may still hold the lock must not go back to the pool: closing it frees the lock.
    if (healthy) connection.release();
    else connection.destroy();
  }
}
