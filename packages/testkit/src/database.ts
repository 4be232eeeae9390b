import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

export interface DatabaseSettings {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface TestDatabase extends DatabaseSettings {
  database: string;
  /** The DB_* variables that point a service at this database. */
  env: Record<string, string>;
  drop(): Promise<void>;
}

/** The server tests use: DB_* from the environment, else root without a password on 127.0.0.1:3306. */
export function testDatabaseSettings(env: NodeJS.ProcessEnv = process.env): DatabaseSettings {
  return {
    host: env.DB_HOSTNAME || '127.0.0.1',
    port: Number(env.DB_PORT || 3306),
    user: env.DB_USERNAME || 'root',
    password: env.DB_PASSWORD ?? '',
  };
}

/** The DB_* variables that point a service (or the local stack) at `settings`, and at `database` when given. */
export function databaseEnv(settings: DatabaseSettings, database?: string): Record<string, string> {
  return {
    DB_HOSTNAME: settings.host,
    DB_PORT: String(settings.port),
    ...(database === undefined ? {} : { DB_NAME: database }),
    DB_USERNAME: settings.user,
    DB_PASSWORD: settings.password,
  };
}

/** Creates a database no other run uses, named after `label`; drop() removes it. */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const settings = testDatabaseSettings();
  const database = `canary_${label.replace(/[^a-z0-9]/gi, '').slice(0, 20)}_${process.pid}_${randomBytes(4).toString('hex')}`;
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ ...settings, connectTimeout: 5000 });
  } catch (err) {
    throw new Error(
      `No MySQL-compatible server answered at ${settings.user}@${settings.host}:${settings.port} ` +
        `(set DB_HOSTNAME, DB_PORT, DB_USERNAME, DB_PASSWORD): ${(err as Error).message}`,
    );
  }
  try {
    await connection.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await connection.end();
  }
  return {
    ...settings,
    database,
    env: databaseEnv(settings, database),
    async drop() {
      const c = await mysql.createConnection({ ...settings, connectTimeout: 5000 });
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${database}\``);
      } finally {
        await c.end();
      }
    },
  };
}
