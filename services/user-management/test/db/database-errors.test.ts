import { HttpError } from '@canary/service-kit';
import { describe, expect, it } from 'vitest';
import { translateDatabaseError } from '../../src/db/database-errors.js';

describe('a database failure turned into a 503', () => {
  it('tells the log why, from the driver\'s code and message, and never carries the statement\'s SQL', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED', errno: -111, fatal: true });
    const translated = translateDatabaseError(refused);
    expect(translated).toBeInstanceOf(HttpError);
    expect((translated as HttpError).log).toEqual({
      msg: 'database unavailable',
      fields: { db: { code: 'ECONNREFUSED', errno: -111, reason: 'connect ECONNREFUSED 127.0.0.1:3306' } },
    });

    // mysql2 puts the statement, values included, in `sql`: a password hash must not reach the log through it.
    const denied = Object.assign(new Error("Access denied for user 'usermgmt'@'10.0.0.7' (using password: YES)"), {
      code: 'ER_ACCESS_DENIED_ERROR',
      errno: 1045,
      sqlMessage: "Access denied for user 'usermgmt'@'10.0.0.7' (using password: YES)",
      sql: "INSERT INTO users VALUES ('u', '$2b$10$secrethash')",
    });
    const log = (translateDatabaseError(denied) as HttpError).log;
    expect(log?.fields).toEqual({ db: { code: 'ER_ACCESS_DENIED_ERROR', errno: 1045, reason: "Access denied for user 'usermgmt'@'10.0.0.7' (using password: YES)" } });
    expect(JSON.stringify(log)).not.toContain('secrethash');
  });

  it('leaves a statement\'s own error alone: it stays a 500 with its details in the log', () => {
    const syntax = Object.assign(new Error('You have an error in your SQL syntax'), { code: 'ER_PARSE_ERROR', errno: 1064 });
    expect(translateDatabaseError(syntax)).toBe(syntax);
  });
});
