import type { Pool, PoolConnection } from 'mysql2/promise';
import { acquireTimeoutMessage } from './database-errors.js';

/**
 * MySQL errors after which mysql2's own `pool.query` destroys the connection instead of returning it: the server
 * has become read-only (an Aurora writer during failover answers 1290), so the next query needs a new connection.
 */
const readOnlyErrnos = new Set([1290, 1792, 1836]);

function isReadOnlyError(err: unknown): boolean {
  const errno = typeof err === 'object' && err !== null ? (err as { errno?: unknown }).errno : undefined;
  return typeof errno === 'number' && readOnlyErrnos.has(errno);
}

type Statement = (connection: PoolConnection) => Promise<unknown>;

type Acquire = () => Promise<PoolConnection>;

/**
 * A connection from `acquire`, or a rejection with `acquireTimeoutMessage` after `timeoutMs`. mysql2 keeps the
 * abandoned request in its queue; the connection it later gets goes straight back to the pool.
 */
function acquireWithin(acquire: Acquire, timeoutMs: number): Promise<PoolConnection> {
  return new Promise((resolve, reject) => {
    let abandoned = false;
    const timer = setTimeout(() => {
      abandoned = true;
      reject(new Error(acquireTimeoutMessage));
    }, timeoutMs);
    acquire().then(
      (connection) => {
        if (abandoned) return connection.release();
        clearTimeout(timer);
        resolve(connection);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

async function onFreeConnection(acquire: Acquire, statement: Statement): Promise<unknown> {
  const connection = await acquire();
  let reusable = true;
  try {
    return await statement(connection);
  } catch (err) {
    reusable = !isReadOnlyError(err);
    throw err;
  } finally {
    if (reusable) connection.release();
    else connection.destroy();
  }
}

/**
 * `pool`, whose `query` and `execute` first take a free connection, then run the statement on it and give it
 * back, as a transaction does. With mysql2's own `pool.query` (which makes the statement's command before a
 * connection is free and gives it a new result callback once one is) the rows read into the command outlive
 * young-generation collections: measured on Node 20 and 26, 50 concurrent `SELECT`s of 100 rows through
 * `pool.query` had about half of all they allocated promoted to the old generation and ran at 5,000 to 7,800
 * queries/s; taking the connection first, nothing was promoted and they ran at 12,200 to 12,400
 * (docs/benchmarks.md). Every wait for a connection, `getConnection` included, ends after `acquireTimeoutMs`:
 * mysql2's queue has no time bound, and when the host does not answer it drains only one request per failed
 * connect. Errors, the queue limit and read-only handling stay the driver's.
 */
export function acquireFirst(pool: Pool, acquireTimeoutMs: number): Pool {
  const getConnection = pool.getConnection.bind(pool);
  const acquire: Acquire = () => acquireWithin(getConnection, acquireTimeoutMs);
  const query = (...args: unknown[]) => onFreeConnection(acquire, (connection) => (connection.query as (...a: unknown[]) => Promise<unknown>)(...args));
  const execute = (...args: unknown[]) => onFreeConnection(acquire, (connection) => (connection.execute as (...a: unknown[]) => Promise<unknown>)(...args));
  return Object.assign(pool, { query, execute, getConnection: acquire } as Pick<Pool, 'query' | 'execute' | 'getConnection'>);
}
