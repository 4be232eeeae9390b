import { createRequire } from 'node:module';
import type { ConnectionOptions, Pool, PoolConnection } from 'mysql2/promise';
import { currentScope, UnsampledTrace } from './runtime.js';
import type { SqlData, TraceSubsegment } from './segment.js';

export interface TraceMysqlOptions {
  /** false returns the pool itself: no wrapper, no cost (AWS_XRAY_SDK_ENABLED=false). */
  enabled: boolean;
}

/** Where the pool connects, as X-Ray shows it: `database@host`, a URL without credentials, and the user. */
interface Target {
  name: string;
  url: string;
  user: string;
}

const driverVersion = `mysql2@${(createRequire(import.meta.url)('mysql2/package.json') as { version: string }).version}`;

function targetOf(pool: Pool): Target {
  // The pool keeps the connection settings in `connectionConfig` at run time; its type only declares `config`.
  const config = (pool.pool.config as { connectionConfig?: ConnectionOptions }).connectionConfig ?? pool.pool.config;
  const host = config.socketPath ?? config.host ?? 'localhost';
  const database = config.database ?? '';
  return {
    name: `${database}@${host}`,
    url: config.socketPath ? `mysql://${config.socketPath}/${database}` : `mysql://${host}:${config.port ?? 3306}/${database}`,
    user: config.user ?? '',
  };
}

/** The statement as written, with its placeholders: values travel separately and are never recorded. */
function statementOf(args: unknown[]): string | undefined {
  const first = args[0];
  if (typeof first === 'string') return first;
  if (first && typeof first === 'object' && typeof (first as { sql?: unknown }).sql === 'string') return (first as { sql: string }).sql;
  return undefined;
}

/** Only the error's code: a MySQL message can quote the values of the row that failed (a duplicate key, say). */
function sanitized(err: unknown): { name: string; message: string } {
  const { name, code, errno, sqlState } = err as { name?: string; code?: string; errno?: number; sqlState?: string };
  const parts = [code ?? 'query failed', errno === undefined ? '' : `errno ${errno}`, sqlState ? `sqlState ${sqlState}` : ''];
  return { name: name ?? 'Error', message: parts.filter(Boolean).join(', ') };
}

type Preparation = SqlData['preparation'];

function capture<A extends unknown[], R>(
  target: Target,
  preparation: Preparation,
  call: (...args: A) => Promise<R>,
  fixedStatement?: string,
): (...args: A) => Promise<R> {
  return (...args: A): Promise<R> => {
    const parent = currentScope();
    // Migrations at start and background polls run outside any request by design: nothing to attach to, and
    // nothing to report (unlike an HTTP call outside a request, see xrayHttpInterceptor).
    if (!parent || parent instanceof UnsampledTrace) return call(...args);
    const sub: TraceSubsegment = parent.addSubsegment(target.name);
    sub.namespace = 'remote';
    const statement = fixedStatement ?? statementOf(args);
    sub.sql = {
      url: target.url,
      user: target.user,
      database_type: 'MySQL',
      driver_version: driverVersion,
      ...(preparation === undefined ? {} : { preparation }),
      ...(statement === undefined ? {} : { sanitized_query: statement }),
    };
    let pending: Promise<R>;
    try {
      pending = call(...args);
    } catch (err) {
      sub.close(sanitized(err));
      throw err;
    }
    return pending.then(
      (result) => {
        sub.close();
        return result;
      },
      (err: unknown) => {
        sub.close(sanitized(err));
        throw err;
      },
    );
  };
}

function bindAll<T extends object>(object: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(object, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value: unknown = Reflect.get(target, property, target);
      // Methods run against the real object: mysql2 keeps its state (and event listeners) there.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function traceConnection(connection: PoolConnection, target: Target): PoolConnection {
  return bindAll(connection, {
    query: capture(target, undefined, connection.query.bind(connection) as (...args: unknown[]) => Promise<unknown>),
    execute: capture(target, 'statement', connection.execute.bind(connection) as (...args: unknown[]) => Promise<unknown>),
    beginTransaction: capture(target, undefined, () => connection.beginTransaction(), 'START TRANSACTION'),
    commit: capture(target, undefined, () => connection.commit(), 'COMMIT'),
    rollback: capture(target, undefined, () => connection.rollback(), 'ROLLBACK'),
  });
}

/**
 * A mysql2 promise pool (`createPool(...).promise()` or `mysql2/promise`'s `createPool`) whose every
 * `query`/`execute` — on the pool and on connections from `getConnection()`, transactions included — is a
 * remote X-Ray subsegment named `database@host` with `sql` data: url (no credentials), user, database type,
 * driver, `preparation: statement` for execute (a prepared statement; a query has none) and the statement text with its
 * placeholders. Values are never recorded; a failed query records only its error code.
 *
 * Written instead of aws-xray-sdk-mysql's `captureMySQL`, which on mysql2 3 records `pool.query` and
 * `pool.execute` twice against a real server (the pool's own connection is patched too) and breaks
 * `mysql2/promise` pools (XRAY-NODE-FACTS §7). The segment is taken where the caller calls, so a query
 * waiting for a free connection still belongs to its own request.
 */
export function traceMysqlPool(pool: Pool, options: TraceMysqlOptions): Pool {
  if (!options.enabled) return pool;
  const target = targetOf(pool);
  return bindAll(pool, {
    query: capture(target, undefined, pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>),
    execute: capture(target, 'statement', pool.execute.bind(pool) as (...args: unknown[]) => Promise<unknown>),
    getConnection: async () => traceConnection(await pool.getConnection(), target),
  });
}
