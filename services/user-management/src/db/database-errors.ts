import { HttpError } from '@canary/service-kit';

export const databaseUnavailableMessage = 'Database unavailable, retry later';

/** Error codes that mean "cannot reach or use the server right now", as opposed to a bad statement. */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
]);

/** What `acquireFirst` rejects with when no connection came within DB_ACQUIRE_TIMEOUT_MS. */
export const acquireTimeoutMessage = 'Timed out waiting for a database connection.';

/** mysql2 pool refusals carry no code, only these messages (and ours, above). */
const unavailableMessages = ['Queue limit reached.', 'No connections available.', 'Pool is closed.', acquireTimeoutMessage];

interface MysqlError {
  code?: string;
  errno?: number;
  fatal?: boolean;
  message?: string;
  sqlMessage?: string;
}

function asMysqlError(err: unknown): MysqlError {
  return typeof err === 'object' && err !== null ? (err as MysqlError) : {};
}

/** True when the error means the database cannot be reached or used at the moment (a 503, not a 500). */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = asMysqlError(err);
  if (e.code && unavailableCodes.has(e.code)) return true;
  // A fatal error ends the connection: whatever it was, the next request gets a new one.
  if (e.fatal === true) return true;
  return e.message !== undefined && unavailableMessages.includes(e.message);
}

export function isDuplicateEntry(err: unknown): boolean {
  return asMysqlError(err).code === 'ER_DUP_ENTRY';
}

/**
 * The index named in a duplicate-entry error: MariaDB says `for key 'uq_users_email'`, MySQL 8
 * `for key 'users.uq_users_email'`.
 */
export function duplicateKeyName(err: unknown): string | undefined {
  const text = asMysqlError(err).sqlMessage ?? asMysqlError(err).message ?? '';
  const match = /for key '(?:[^'.]*\.)?([^']+)'$/.exec(text);
  return match?.[1];
}

/** Turns connection-level failures into the 503 clients see; other errors pass through unchanged. */
export function translateDatabaseError(err: unknown): unknown {
  if (isDatabaseUnavailable(err)) {
    const e = asMysqlError(err);
    const code = e.code ?? 'POOL';
    // The driver's own message says why (refused, access denied, unknown database); it names no password, and
    // unlike the error object it carries no SQL text with a request's values.
    const log = { msg: 'database unavailable', fields: { db: { code, errno: e.errno, reason: e.sqlMessage ?? e.message } } };
    return new HttpError(503, databaseUnavailableMessage, `The database did not answer (${code})`, log);
  }
  return err;
}

/** Runs a database operation and rethrows connection failures as the 503 HttpError. */
export async function withDatabase<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw translateDatabaseError(err);
  }
}
