import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

export interface BenchDatabase {
  name: string;
  /** The DB_* variables that point a service at this database. */
  env: Record<string, string>;
  /** Inserts `count` users into the `users` table (which the service's migrations create). */
  seedUsers(count: number): Promise<void>;
  drop(): Promise<void>;
}

interface ServerSettings {
  host: string;
  port: number;
  user: string;
  password: string;
}

function serverSettings(env: NodeJS.ProcessEnv): ServerSettings {
  return {
    host: env.DB_HOSTNAME || '127.0.0.1',
    port: Number(env.DB_PORT || 3306),
    user: env.DB_USERNAME || 'root',
    password: env.DB_PASSWORD ?? '',
  };
}

/** bcrypt's alphabet: a random value in its format, which no password matches (the bench never logs in). */
function unusableHash(): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `$2b$10$${[...randomBytes(53)].map((byte) => alphabet[byte % 64]).join('')}`;
}

/** A database of its own for this bench run, on the server named by DB_* (default root@127.0.0.1:3306). */
export async function createBenchDatabase(env: NodeJS.ProcessEnv = process.env): Promise<BenchDatabase> {
  const settings = serverSettings(env);
  const name = `canary_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  const connect = async (database?: string): Promise<mysql.Connection> => {
    try {
      return await mysql.createConnection({ ...settings, ...(database ? { database } : {}), connectTimeout: 5000 });
    } catch (err) {
      throw new Error(
        `No MySQL-compatible server answered at ${settings.user}@${settings.host}:${settings.port} ` +
          `(set DB_HOSTNAME, DB_PORT, DB_USERNAME, DB_PASSWORD): ${(err as Error).message}`,
      );
    }
  };
  const admin = await connect();
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.end();
  }
  return {
    name,
    env: {
      DB_HOSTNAME: settings.host,
      DB_PORT: String(settings.port),
      DB_NAME: name,
      DB_USERNAME: settings.user,
      DB_PASSWORD: settings.password,
    },
    async seedUsers(count) {
      const rows = Array.from({ length: count }, (_, i) => {
        const n = String(i + 1).padStart(3, '0');
        return [`benchuser${n}`, unusableHash(), i % 5 !== 0, i % 10 === 0 ? 'ROLE_ADMIN' : 'ROLE_USER', `benchuser${n}@example.com`, `First${n}`, `Last${n}`];
      });
      const connection = await connect(name);
      try {
        await connection.query('INSERT INTO users (username, password, enabled, role, email, firstname, lastname) VALUES ?', [rows]);
      } finally {
        await connection.end();
      }
    },
    async drop() {
      const connection = await connect();
      try {
        await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await connection.end();
      }
    },
  };
}
