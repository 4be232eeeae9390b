import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { loadConfig } from '@canary/service-kit';
import { createTestDatabase, startSmtpServer, type TestDatabase, type TestSmtpServer } from '@canary/testkit';
import { buildApp as buildNotification } from '@canary/notification';
import { configSchema as notificationConfigSchema } from '@canary/notification/config';
import { buildApp as buildUserManagement, configSchema, createDatabasePool, runMigrations, type DatabasePool } from '@canary/user-management';

const from = 'no-reply@stacksimplify.test';
const user = {
  username: 'microtest1',
  email: 'microtest1@example.com',
  role: 'ROLE_ADMIN',
  enabled: true,
  firstname: 'MicroFName',
  lastname: 'MicroLname',
  password: 'Pass@123',
};

let smtp: TestSmtpServer;
let db: TestDatabase;
let pool: DatabasePool;
let notification: FastifyInstance | undefined;
let usermgmt: FastifyInstance;
let notificationPort: number;
let base: string;

function startNotification(port: number): Promise<string> {
  notification = buildNotification(
    loadConfig(notificationConfigSchema, {
      LOG_LEVEL: 'silent',
      APP_VERSION: 'V1',
      AWS_MAIL_SERVER_HOST: '127.0.0.1',
      AWS_MAIL_SERVER_PORT: String(smtp.port),
      AWS_MAIL_SERVER_FROM_ADDRESS: from,
    }),
  );
  return notification.listen({ port, host: '127.0.0.1' });
}

async function outboxStatuses(): Promise<string[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT status FROM notification_outbox ORDER BY id');
  return rows.map((row) => String(row.status));
}

/** The outbox records a delivery after the notification service answers, which is after SMTP accepted the mail. */
async function outboxSettles(expected: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (JSON.stringify(await outboxStatuses()) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(await outboxStatuses()).toEqual(expected);
}

beforeAll(async () => {
  smtp = await startSmtpServer();
  // The notification service listens on port 0 once, so the test knows a port it can come back on later.
  await startNotification(0);
  notificationPort = (notification!.server.address() as AddressInfo).port;

  db = await createTestDatabase('accountemail');
  const config = loadConfig(configSchema, {
    ...db.env,
    LOG_LEVEL: 'silent',
    NOTIFICATION_SERVICE_HOST: '127.0.0.1',
    NOTIFICATION_SERVICE_PORT: String(notificationPort),
    OUTBOX_RETRY_BASE_MS: '100',
    OUTBOX_RETRY_MAX_MS: '300',
    OUTBOX_POLL_INTERVAL_MS: '200',
  });
  pool = createDatabasePool(config);
  await runMigrations(pool);
  usermgmt = buildUserManagement(config);
  base = `${await usermgmt.listen({ port: 0, host: '127.0.0.1' })}/usermgmt`;
});

afterAll(async () => {
  await usermgmt?.close();
  await notification?.close();
  await smtp?.close();
  await pool?.end();
  await db?.drop();
});

function create(body: typeof user): Promise<Response> {
  return fetch(`${base}/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('account e-mail, user management → notification → SMTP', () => {
  it('creating a user delivers the original\'s subject, recipient and content', async () => {
    const res = await create(user);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    const [mail] = await smtp.waitForMessages(1, 15_000);
    expect(smtp.messages).toHaveLength(1);
    expect(mail).toMatchObject({
      from,
      recipients: ['microtest1@example.com'],
      to: ['microtest1@example.com'],
      subject: 'Stack Simplify account creation.',
      text: 'Hello MicroFName, your stack simplify account is created successfully!',
    });
    await outboxSettles(['sent']);
  });

  it('proxies the real notification service\'s X-Ray answer', async () => {
    const res = await fetch(`${base}/notification-xray`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ applicationname: 'Notification Microservice', appversion: 'V1', message: 'Enabled AWS XRay' });
  });

  it('while the notification service is down, still creates the user, and e-mails once it is back', async () => {
    await notification!.close();
    notification = undefined;
    const res = await create({ ...user, username: 'latecomer', email: 'latecomer@example.com', firstname: 'Late' });
    expect(res.status).toBe(200);
    expect((await fetch(`${base}/user/latecomer`)).status).toBe(200);
    expect((await fetch(`${base}/notification-xray`)).status).toBe(502);

    await startNotification(notificationPort);
    await smtp.waitForMessages(2, 15_000);
    expect(smtp.messages[1]).toMatchObject({
      recipients: ['latecomer@example.com'],
      subject: 'Stack Simplify account creation.',
      text: 'Hello Late, your stack simplify account is created successfully!',
    });
    await outboxSettles(['sent', 'sent']);
    expect(smtp.messages).toHaveLength(2);
  });
});
