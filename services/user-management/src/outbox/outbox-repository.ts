import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { DatabasePool } from '../db/pool.js';

/** A message to hand to the notification service, stored with the change that caused it. */
export interface OutboxMessage {
  /** What the message is about, for people reading the table (e.g. `account-created`). */
  kind: string;
  /** The JSON body of POST /notification/send. */
  payload: unknown;
}

export interface ClaimedMessage {
  id: number;
  kind: string;
  /** The serialized JSON body, sent as stored. */
  payload: string;
  /** Attempts made before this one. */
  attempts: number;
}

type Queryable = Pick<Connection, 'query'>;

/** Adds a pending message; called inside the transaction that makes the change, so both commit or neither. */
export async function insertOutboxMessage(db: Queryable, message: OutboxMessage): Promise<void> {
  await db.query(
    `INSERT INTO notification_outbox (kind, payload, status, attempts, next_attempt_at, created_at)
     VALUES (?, ?, 'pending', 0, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))`,
    [message.kind, JSON.stringify(message.payload)],
  );
}

export interface ClaimOptions {
  limit: number;
  /** How long the claim keeps other dispatchers away; longer than the worst send (connect + response timeouts). */
  leaseMs: number;
  /** Identifies this claim, so a late update cannot overwrite a newer claim by another dispatcher. */
  token: string;
}

/**
 * Takes up to `limit` due messages for this dispatcher. SKIP LOCKED lets replicas claim at the same time without
 * waiting on, or taking, each other's rows; the claim pushes `next_attempt_at` out by the lease, so a dispatcher
 * that dies mid-send leaves its rows to the others once the lease ends. Database time is used throughout, so
 * replicas' clocks do not matter.
 */
export async function claimDueMessages(pool: DatabasePool, options: ClaimOptions): Promise<ClaimedMessage[]> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    try {
      const [rows] = await connection.query<RowDataPacket[]>(
        `SELECT id, kind, payload, attempts FROM notification_outbox
         WHERE status = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(3)
         ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,
        [options.limit],
      );
      if (rows.length > 0) {
        await connection.query(
          `UPDATE notification_outbox SET claim_token = ?, next_attempt_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? MICROSECOND)
           WHERE id IN (?)`,
          [options.token, options.leaseMs * 1000, rows.map((row) => row.id)],
        );
      }
      await connection.commit();
      return rows.map((row) => ({ id: Number(row.id), kind: String(row.kind), payload: String(row.payload), attempts: Number(row.attempts) }));
    } catch (err) {
      await connection.rollback().catch(() => undefined);
      throw err;
    }
  } finally {
    connection.release();
  }
}

/** Records a delivery; false when the claim was lost to another dispatcher meanwhile (lease expired). */
export async function markSent(pool: DatabasePool, id: number, token: string): Promise<boolean> {
  const [result] = await pool.query<ResultSetHeader>(
    `UPDATE notification_outbox SET status = 'sent', sent_at = UTC_TIMESTAMP(3), attempts = attempts + 1,
       last_error = NULL, claim_token = NULL
     WHERE id = ? AND claim_token = ?`,
    [id, token],
  );
  return result.affectedRows === 1;
}

/** Whether the message is recorded as sent: after a failed `markSent`, whose update may have committed anyway. */
export async function isMarkedSent(pool: DatabasePool, id: number): Promise<boolean> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT status FROM notification_outbox WHERE id = ?`, [id]);
  return rows[0]?.status === 'sent';
}

export interface FailureRecord {
  error: string;
  retryInMs: number;
  /** No attempts left: the row is set aside as `failed` and no longer retried. */
  giveUp: boolean;
}

export async function markFailed(pool: DatabasePool, id: number, token: string, failure: FailureRecord): Promise<boolean> {
  const [result] = await pool.query<ResultSetHeader>(
    `UPDATE notification_outbox SET status = ?, attempts = attempts + 1, last_error = ?, claim_token = NULL,
       next_attempt_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? MICROSECOND)
     WHERE id = ? AND claim_token = ?`,
    [failure.giveUp ? 'failed' : 'pending', failure.error.slice(0, 500), Math.round(failure.retryInMs * 1000), id, token],
  );
  return result.affectedRows === 1;
}
