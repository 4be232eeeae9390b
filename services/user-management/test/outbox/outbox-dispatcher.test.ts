import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import mysql from 'mysql2';
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase, } from '@canary/testkit';
import type { Env } from '@canary/service-kit';
import { buildApp } from '../../src/app.js';
import { createDatabasePool, type DatabasePool, type MysqlDriver } from '../../src/db/pool.js';
import { runMigrations } from '../../src/db/migrations.js';
import { createNotificationClient } from '../../src/notification-client.js';
import { accountCreatedEmail } from '../../src/outbox/account-email.js';
import { OutboxDispatcher, type OutboxDispatcherOptions, type OutboxLog } from '../../src/outbox/outbox-dispatcher.js';
import { insertOutboxMessage } from '../../src/outbox/outbox-repository.js';
import { eventually, startFakeNotification, testConfig, validUser, type FakeNotification } from '../support/helpers.js';

let db: TestDatabase;
let pool: DatabasePool;
let fake: FakeNotification;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  db = await createTestDatabase('umoutbox');
  pool = createDatabasePool(testConfig(db.env));
  await runMigrations(pool);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

beforeEach(async () => {
  await pool.query('DELETE FROM users');
  await pool.query('DELETE FROM notification_outbox');
  fake = await startFakeNotification();
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  await fake.close();
});

function startApp(overrides: Env = {}, outbox = true): FastifyInstance {
  const app = buildApp(testConfig(db.env, { NOTIFICATION_SERVICE_PORT: String(fake.port), NOTIFICATION_RESPONSE_TIMEOUT_MS: '500', ...overrides }), {
    logging: false,
    outbox,
  });
  apps.push(app);
  return app;
}

async function createUser(app: FastifyInstance, n = 1): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/usermgmt/user', payload: { ...validUser, username: `user${n}`, email: `user${n}@example.com`, firstname: `First${n}` } });
  expect(res.statusCode).toBe(200);
  expect(res.body).toBe('');
}

async function outboxRows(): Promise<RowDataPacket[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM notification_outbox ORDER BY id');
  return rows;
}

const email = (n: number) => ({
  subject: 'Stack Simplify account creation.',
  content: `Hello First${n}, your stack simplify account is created successfully!`,
  toEmails: [`user${n}@example.com`],
});

/** Gives pollers time to misbehave (send again) before a test checks they did not. */
const severalPolls = () => new Promise((resolve) => setTimeout(resolve, 600));

/** A real notification client for the fake, with short timeouts. */
const fakeClient = () =>
  createNotificationClient({ NOTIFICATION_SERVICE_HOST: '127.0.0.1', NOTIFICATION_SERVICE_PORT: fake.port, NOTIFICATION_CONNECT_TIMEOUT_MS: 1000, NOTIFICATION_RESPONSE_TIMEOUT_MS: 1000 });

/** A dispatcher of its own, polling and retrying fast, for tests that drive it without an app. */
function fastDispatcher(options: Pick<OutboxDispatcherOptions, 'pool' | 'client' | 'log'> & Partial<OutboxDispatcherOptions>): OutboxDispatcher {
  return new OutboxDispatcher({ pollIntervalMs: 20, retryBaseMs: 50, retryMaxMs: 100, maxAttempts: 5, leaseMs: 30_000, ...options });
}

describe('account e-mail outbox', () => {
  it('sends the original\'s e-mail once, right after the user is created', async () => {
    const app = startApp();
    await app.ready();
    await createUser(app, 1);
    await fake.waitForDeliveries(1);
    await severalPolls();
    expect(fake.sent()).toEqual([email(1)]);
    const send = fake.requests.find((r) => r.url === '/notification/send');
    expect(send?.contentType).toBe('application/json');
    const [row] = await outboxRows();
    expect(row).toMatchObject({ status: 'sent', attempts: 1, last_error: null, claim_token: null });
    expect(row?.sent_at).toBeInstanceOf(Date);
  });

  it('keeps the user when the notification service fails, and delivers the e-mail once it recovers', async () => {
    fake.behaviour = 'fail';
    const app = startApp();
    await app.ready();
    await createUser(app, 1);
    expect((await app.inject({ url: '/usermgmt/user/user1' })).statusCode).toBe(200);
    const failed = await eventually(async () => {
      const [row] = await outboxRows();
      return row && Number(row.attempts) >= 2 ? row : undefined;
    });
    expect(failed).toMatchObject({ status: 'pending', last_error: 'HTTP 500: {"message":"SMTP server said no"}', sent_at: null });

    fake.behaviour = 'ok';
    await fake.waitForDeliveries(1);
    await severalPolls();
    expect(fake.sent().at(-1)).toEqual(email(1));
    const [row] = await outboxRows();
    expect(row).toMatchObject({ status: 'sent', last_error: null });
    expect(Number(row?.attempts)).toBeGreaterThan(Number(failed.attempts));
    // Only one request was answered 2xx, so exactly one e-mail went out.
    expect(fake.requests.filter((r) => r.url === '/notification/send')).toHaveLength(Number(row?.attempts));
  });

  it('answers 200 at once while the notification service hangs, and retries after the timeout', async () => {
    fake.behaviour = 'hang';
    const app = startApp();
    await app.ready();
    await createUser(app, 1);
    const row = await eventually(async () => {
      const [r] = await outboxRows();
      return r && Number(r.attempts) >= 1 ? r : undefined;
    });
    expect(row).toMatchObject({ status: 'pending', last_error: 'Notification service timed out: no response within 500 ms' });
    fake.behaviour = 'ok';
    await fake.waitForDeliveries(1);
  });

  it('sends, after a restart, what an earlier process left pending', async () => {
    const before = startApp({}, false);
    await createUser(before, 1);
    await createUser(before, 2);
    await before.close();
    expect(fake.requests).toHaveLength(0);
    expect((await outboxRows()).map((row) => row.status)).toEqual(['pending', 'pending']);

    const after = startApp();
    await after.ready();
    await fake.waitForDeliveries(2);
    await severalPolls();
    expect(fake.sent()).toEqual([email(1), email(2)]);
  });

  it('with two dispatchers on one database sends each message exactly once', async () => {
    const messages = 60;
    for (let n = 1; n <= messages; n++) await insertOutboxMessage(pool, accountCreatedEmail(`First${n}`, `user${n}@example.com`));
    const quiet = { info() {}, warn() {}, error() {} };
    const replicas = [0, 1].map(() => {
      const replicaPool = createDatabasePool(testConfig(db.env));
      const real = fakeClient();
      const replica = { sends: 0 };
      const client = { ...real, send: (body: string, signal?: AbortSignal) => (replica.sends++, real.send(body, signal)) };
      const dispatcher = fastDispatcher({ pool: replicaPool, client, log: quiet, batchSize: 3 });
      return { replicaPool, client, dispatcher, replica };
    });
    fake.delayMs = 5;
    for (const { dispatcher } of replicas) dispatcher.start();
    await fake.waitForDeliveries(messages);
    await severalPolls();
    for (const { dispatcher, client, replicaPool } of replicas) {
      await dispatcher.stop();
      await client.close();
      await replicaPool.end();
    }
    // Both took part: the claims, not luck, kept them apart.
    expect(replicas.map(({ replica }) => replica.sends > 0)).toEqual([true, true]);
    expect(replicas[0]!.replica.sends + replicas[1]!.replica.sends).toBe(messages);
    const sent = fake.sent() as { toEmails: string[] }[];
    expect(sent).toHaveLength(messages);
    expect(new Set(sent.map((message) => message.toEmails[0])).size).toBe(messages);
    const rows = await outboxRows();
    expect(rows.every((row) => row.status === 'sent' && Number(row.attempts) === 1)).toBe(true);
  });

  it('gives up after OUTBOX_MAX_ATTEMPTS, keeping the row and its last error', async () => {
    fake.behaviour = 'fail';
    const app = startApp({ OUTBOX_MAX_ATTEMPTS: '3' });
    await app.ready();
    await createUser(app, 1);
    const row = await eventually(async () => {
      const [r] = await outboxRows();
      return r?.status === 'failed' ? r : undefined;
    });
    expect(row).toMatchObject({ status: 'failed', attempts: 3, last_error: 'HTTP 500: {"message":"SMTP server said no"}' });
    await severalPolls();
    expect(fake.requests.filter((r) => r.url === '/notification/send')).toHaveLength(3);
  });

  it('stops on close while a send hangs, leaving the message due for the next process', async () => {
    fake.behaviour = 'hang';
    const app = startApp({ NOTIFICATION_RESPONSE_TIMEOUT_MS: '60000' });
    await app.ready();
    await createUser(app, 1);
    await eventually(() => (fake.requests.some((r) => r.url === '/notification/send') ? true : undefined));
    await app.close();
    const [row] = await outboxRows();
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_error: 'interrupted by shutdown', claim_token: null });
    const [[due]] = await pool.query<RowDataPacket[]>('SELECT next_attempt_at <= UTC_TIMESTAMP(3) AS due FROM notification_outbox');
    expect(Number(due?.due)).toBe(1);

    fake.behaviour = 'ok';
    const next = startApp();
    await next.ready();
    await fake.waitForDeliveries(1);
    expect(fake.sent().at(-1)).toEqual(email(1));
  });
});

/** The mysql2 module, with every connection giving up on a row lock after 1 s instead of 50. */
const impatientDriver: MysqlDriver = {
  createPool: ((options: mysql.PoolOptions) => {
    const core = mysql.createPool(options);
    core.on('connection', (connection) => connection.query('SET SESSION innodb_lock_wait_timeout = 1'));
    return core;
  }) as typeof mysql.createPool,
};

interface LogEntry {
  level: 'info' | 'warn' | 'error';
  msg: string;
  obj: Record<string, unknown>;
}

describe('recording a delivery while the database refuses it', () => {
  const recordLater = 'outbox: delivered, but cannot record it yet; will retry the record';
  const leftToLease = 'outbox: delivered, but cannot record it; it goes out again once its claim ends';
  let impatientPool: DatabasePool;
  let locker: PoolConnection;
  let logged: LogEntry[];
  let stopDispatcher: () => Promise<void>;

  beforeEach(async () => {
    impatientPool = createDatabasePool(testConfig(db.env), impatientDriver);
    locker = await pool.getConnection();
    logged = [];
    await insertOutboxMessage(pool, accountCreatedEmail('First1', 'user1@example.com'));
    // The e-mail has gone when the row gets locked, so recording it waits, then fails with a lock wait timeout.
    fake.beforeAnswer = async () => {
      fake.beforeAnswer = undefined;
      await locker.beginTransaction();
      await locker.query('SELECT id FROM notification_outbox FOR UPDATE');
    };
  });

  afterEach(async () => {
    await locker.rollback().catch(() => undefined);
    locker.release();
    await stopDispatcher();
    await impatientPool.end();
  });

  function startDispatcher(leaseMs: number): OutboxDispatcher {
    const entry = (level: LogEntry['level']) => (obj: object, msg: string) => void logged.push({ level, msg, obj: obj as Record<string, unknown> });
    const log: OutboxLog = { info: entry('info'), warn: entry('warn'), error: entry('error') };
    const client = fakeClient();
    const dispatcher = fastDispatcher({ pool: impatientPool, client, log, leaseMs });
    stopDispatcher = async () => {
      await dispatcher.stop();
      await client.close();
    };
    dispatcher.start();
    return dispatcher;
  }

  const logEntry = (msg: string) => eventually(() => logged.find((entry) => entry.msg === msg));
  const messages = (level: LogEntry['level']) => logged.filter((entry) => entry.level === level).map((entry) => entry.msg);

  it('retries the record, and does not send the e-mail again', async () => {
    startDispatcher(30_000);
    const refused = await logEntry(recordLater);
    expect(refused.obj).toMatchObject({ outboxId: expect.any(Number), attempt: 1, code: 'ER_LOCK_WAIT_TIMEOUT' });
    await locker.commit();

    await logEntry('outbox: message delivered');
    await severalPolls();
    expect(fake.sent()).toEqual([email(1)]);
    const [row] = await outboxRows();
    expect(row).toMatchObject({ status: 'sent', attempts: 1, last_error: null, claim_token: null });
    expect(messages('error')).toEqual([]);
  });

  it('leaves the row to its lease once the claim ends, then sends the e-mail again', async () => {
    startDispatcher(2_500);
    await logEntry(leftToLease);
    // Retried for as long as the claim held (each try waits 1 s on the lock), then left alone: no failure record.
    expect(messages('warn').filter((msg) => msg === recordLater).length).toBeGreaterThanOrEqual(1);
    const [held] = await outboxRows();
    expect(held).toMatchObject({ status: 'pending', attempts: 0, last_error: null, sent_at: null });
    expect(held?.claim_token).toMatch(/^[0-9a-f]{32}$/);
    await locker.commit();

    await fake.waitForDeliveries(2);
    await logEntry('outbox: message delivered');
    expect(fake.sent()).toEqual([email(1), email(1)]);
    const [row] = await outboxRows();
    expect(row).toMatchObject({ status: 'sent', attempts: 1, last_error: null, claim_token: null });
  });

  it('on shutdown tries the record once more, then leaves the row claimed for the lease', async () => {
    const dispatcher = startDispatcher(30_000);
    await logEntry(recordLater);
    await dispatcher.stop();
    expect(messages('error')).toEqual([leftToLease]);
    const [row] = await outboxRows();
    expect(row).toMatchObject({ status: 'pending', attempts: 0, last_error: null, sent_at: null });
    const [[due]] = await pool.query<RowDataPacket[]>('SELECT next_attempt_at > UTC_TIMESTAMP(3) AS later FROM notification_outbox');
    expect(Number(due?.later)).toBe(1);
    expect(fake.sent()).toEqual([email(1)]);
  });
});
