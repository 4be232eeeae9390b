import type { Pool, PoolConnection } from 'mysql2/promise';

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

async function onFreeConnection(pool: Pool, statement: Statement): Promise<unknown> {
  const connection = await pool.getConnection();
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
 * (docs/benchmarks.md). Errors, the queue limit and read-only handling stay the driver's.
 */
export function acquireFirst(pool: Pool): Pool {
  const query = (...args: unknown[]) => onFreeConnection(pool, (connection) => (connection.query as (...a: unknown[]) => Promise<unknown>)(...args));
  const execute = (...args: unknown[]) => onFreeConnection(pool, (connection) => (connection.execute as (...a: unknown[]) => Promise<unknown>)(...args));
  return Object.assign(pool, { query, execute } as Pick<Pool, 'query' | 'execute'>);
}
