import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { DatabasePool } from '../db/pool.js';
import { duplicateKeyName, isDuplicateEntry, withDatabase } from '../db/database-errors.js';
import { insertOutboxMessage, type OutboxMessage } from '../outbox/outbox-repository.js';

/** A user as stored, without the password hash, which is written here and never read back out. */
export interface User {
  username: string;
  email: string;
  role: string;
  enabled: boolean;
  firstname: string;
  lastname: string;
}

export interface NewUser extends User {
  passwordHash: string;
}

export interface UserChanges {
  email: string;
  firstname: string;
  lastname: string;
}

/** Which unique value another user already holds. */
export type Conflict = 'username' | 'email';

export type CreateResult = { created: true } | { created: false; conflict: Conflict };
export type UpdateResult = { updated: true } | { updated: false; reason: 'not-found' | 'email' };

const userColumns = 'username, email, role, enabled, firstname, lastname';

function toUser(row: RowDataPacket): User {
  return {
    username: String(row.username),
    email: String(row.email),
    role: String(row.role),
    enabled: Boolean(row.enabled),
    firstname: String(row.firstname),
    lastname: String(row.lastname),
  };
}

/** The unique index that refused a row: the primary key is the username, uq_users_email the e-mail. */
function conflictOf(err: unknown): Conflict | undefined {
  if (!isDuplicateEntry(err)) return undefined;
  return duplicateKeyName(err) === 'PRIMARY' ? 'username' : 'email';
}

/**
 * Every SQL statement about users. Uniqueness is left to the database's indexes, so concurrent requests cannot
 * both win; connection failures come out as the 503 HttpError (see db/database-errors.ts).
 */
export function createUsersRepository(pool: DatabasePool) {
  return {
    list(): Promise<User[]> {
      return withDatabase(async () => {
        const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${userColumns} FROM users ORDER BY username`);
        return rows.map(toUser);
      });
    },

    find(username: string): Promise<User | undefined> {
      return withDatabase(async () => {
        const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${userColumns} FROM users WHERE username = ?`, [username]);
        return rows[0] ? toUser(rows[0]) : undefined;
      });
    },

    /** Inserts the user and its notification in one transaction: both are stored, or neither. */
    create(user: NewUser, notification: OutboxMessage): Promise<CreateResult> {
      return withDatabase(async () => {
        const connection = await pool.getConnection();
        try {
          await connection.beginTransaction();
          try {
            await connection.query(
              'INSERT INTO users (username, password, enabled, role, email, firstname, lastname) VALUES (?, ?, ?, ?, ?, ?, ?)',
              [user.username, user.passwordHash, user.enabled, user.role, user.email, user.firstname, user.lastname],
            );
            await insertOutboxMessage(connection, notification);
            await connection.commit();
            return { created: true } as const;
          } catch (err) {
            await connection.rollback().catch(() => undefined);
            const conflict = conflictOf(err);
            if (conflict) return { created: false, conflict } as const;
            throw err;
          }
        } finally {
          connection.release();
        }
      });
    },

    update(username: string, changes: UserChanges): Promise<UpdateResult> {
      return withDatabase(async () => {
        try {
          // The driver's FOUND_ROWS flag makes affectedRows count matched rows, so an unchanged user is not a 404.
          const [result] = await pool.query<ResultSetHeader>('UPDATE users SET email = ?, firstname = ?, lastname = ? WHERE username = ?', [
            changes.email,
            changes.firstname,
            changes.lastname,
            username,
          ]);
          return result.affectedRows === 1 ? ({ updated: true } as const) : ({ updated: false, reason: 'not-found' } as const);
        } catch (err) {
          if (conflictOf(err) === 'email') return { updated: false, reason: 'email' } as const;
          throw err;
        }
      });
    },

    remove(username: string): Promise<boolean> {
      return withDatabase(async () => {
        const [result] = await pool.query<ResultSetHeader>('DELETE FROM users WHERE username = ?', [username]);
        return result.affectedRows === 1;
      });
    },

    /** Flips `enabled` in one statement, so two concurrent toggles both count. */
    toggleEnabled(username: string): Promise<boolean> {
      return withDatabase(async () => {
        const [result] = await pool.query<ResultSetHeader>('UPDATE users SET enabled = NOT enabled WHERE username = ?', [username]);
        return result.affectedRows === 1;
      });
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
