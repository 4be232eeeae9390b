import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate, createTestDatabase, startSmtpServer, type TestDatabase, type TestSmtpServer } from '@canary/testkit';
import { serviceBundle } from '../tools/src/bundle/bundle-paths.js';

/**
 * Both services as real processes at LOG_LEVEL=trace, with a database password and an SMTP password, working and
 * failing: no password (database, SMTP, a user's) and no password hash may appear in any response or log line, and
 * the SMTP credentials never cross the wire in clear text (a relay records what the notification service sends).
 */

const rootDir = fileURLToPath(new URL('..', import.meta.url));
const entries = {
  'user-management': serviceBundle(rootDir, 'user-management'),
  notification: serviceBundle(rootDir, 'notification'),
};

const tag = randomBytes(6).toString('hex');
const dbSecret = `Db-${tag}-Secret`;
const rotatedDbSecret = `Db-${tag}-Rotated`;
const wrongDbSecret = `Db-${tag}-Wrong`;
const smtpSecret = `Smtp-${tag}-Secret`;
const wrongSmtpSecret = `Smtp-${tag}-Wrong`;
const userPassword = `Us3r!${tag}`;
const dbUser = `canary_sec_${tag}`;
const smtpUser = 'mailer';

interface Service {
  child: ChildProcess;
  origin: string;
  output(): string;
  exited: Promise<number | null>;
}

const services: Service[] = [];

async function startService(name: keyof typeof entries, env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, [entries[name]], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'trace', AWS_XRAY_SDK_ENABLED: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const service: Service = { child, origin: '', output: () => output, exited };
  services.push(service);
  const port = await Promise.race([once(child, 'message').then(([message]) => (message as { port: number }).port), exited.then(() => undefined)]);
  if (port !== undefined) service.origin = `http://127.0.0.1:${port}`;
  return service;
}

/** Every response, head and body, as one text to search. */
const answers: string[] = [];

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, init);
  const text = await res.text();
  answers.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
  return { status: res.status, text };
}

const postJson = (url: string, body: unknown, method = 'POST') => call(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Relay {
  port: number;
  /** Everything clients sent through the relay, in order. */
  sent(): Buffer;
  close(): Promise<void>;
}

/** A TCP relay to the SMTP server that records what the notification service sends on the wire. */
async function startRelay(targetPort: number): Promise<Relay> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    sent: () => Buffer.concat(chunks),
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The forms a password takes on the wire or in a log: as is, and base64 as SMTP AUTH PLAIN and LOGIN send it. */
function forms(secret: string, user: string): string[] {
  return [secret, Buffer.from(secret).toString('base64'), Buffer.from(`\0${user}\0${secret}`).toString('base64'), encodeURIComponent(secret)];
}

let db: TestDatabase;
let admin: mysql.Connection;
let dir: string;
let smtp: TestSmtpServer;
let relay: Relay;
let usermgmt: Service;
let notification: Service;
/** The bcrypt hash stored for the user the tests create. */
let storedHash = '';

const dbEnv = (password: string): Record<string, string> => ({
  DB_HOSTNAME: db.host,
  DB_PORT: String(db.port),
  DB_NAME: db.database,
  DB_USERNAME: dbUser,
  DB_PASSWORD: password,
});

async function setDbPassword(password: string): Promise<void> {
  for (const host of ['%', 'localhost']) await admin.query('ALTER USER ?@? IDENTIFIED BY ?', [dbUser, host, password]);
}

beforeAll(async () => {
  db = await createTestDatabase('secrets');
  admin = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password });
  // A user of its own with a password: the test server's root has none. 'localhost' too, or an anonymous user could win.
  for (const host of ['%', 'localhost']) {
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [dbUser, host, dbSecret]);
    await admin.query(`GRANT ALL PRIVILEGES ON \`${db.database}\`.* TO ?@?`, [dbUser, host]);
  }
  const certificate = await createSelfSignedCertificate();
  dir = await mkdtemp(join(tmpdir(), 'secrets-test-'));
  await writeFile(join(dir, 'ca.pem'), certificate.cert);
  smtp = await startSmtpServer({ credentials: { user: smtpUser, pass: smtpSecret }, server: { key: certificate.key, cert: certificate.cert } });
  relay = await startRelay(smtp.port);
  notification = await startService('notification', {
    AWS_MAIL_SERVER_HOST: '127.0.0.1',
    AWS_MAIL_SERVER_PORT: String(relay.port),
    AWS_MAIL_SERVER_USERNAME: smtpUser,
    AWS_MAIL_SERVER_PASSWORD: smtpSecret,
    NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
  });
  usermgmt = await startService('user-management', {
    ...dbEnv(dbSecret),
    NOTIFICATION_SERVICE_HOST: '127.0.0.1',
    NOTIFICATION_SERVICE_PORT: String(new URL(notification.origin).port),
    OUTBOX_POLL_INTERVAL_MS: '200',
    OUTBOX_RETRY_BASE_MS: '100',
  });
  expect([notification.origin, usermgmt.origin].every(Boolean), `${notification.output()}${usermgmt.output()}`).toBe(true);
});

afterAll(async () => {
  for (const service of services) if (service.child.exitCode === null) service.child.kill('SIGKILL');
  await Promise.all(services.map((service) => service.exited));
  await relay?.close();
  await smtp?.close();
  if (admin) {
    for (const host of ['%', 'localhost']) await admin.query('DROP USER IF EXISTS ?@?', [dbUser, host]);
    await admin.end();
  }
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('with working passwords', () => {
  it('creates a user whose e-mail goes out over STARTTLS with AUTH, and answers every route', async () => {
    const base = `${usermgmt.origin}/usermgmt`;
    const user = { username: 'secretive', email: 'secretive@example.com', firstname: 'Sec', lastname: 'Ret', role: 'ROLE_ADMIN', enabled: true, password: userPassword };
    expect((await postJson(`${base}/user`, user)).status).toBe(200);
    const [mail] = await smtp.waitForMessages(1, 20_000);
    expect(mail).toMatchObject({ recipients: ['secretive@example.com'], secure: true, user: smtpUser });

    const [rows] = await admin.query<mysql.RowDataPacket[]>(`SELECT password FROM \`${db.database}\`.users WHERE username = 'secretive'`);
    storedHash = String(rows[0]?.password);
    expect(storedHash).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);

    for (const path of ['/users', '/user/secretive', '/health/ready', '/health/live', '/health-status', '/notification-xray', '/notification-service-info', '/notification-health-status']) {
      expect((await call(`${base}${path}`)).status).toBe(200);
    }
    expect((await postJson(`${base}/user`, user, 'PUT')).status).toBe(200);
    expect((await call(`${base}/status/secretive`)).status).toBe(200);
    expect((await postJson(`${base}/user`, user)).status).toBe(400);
    expect((await postJson(`${base}/user`, { ...user, username: 'other', email: 'o@example.com', password: `${userPassword} ` })).text).toContain('User Password is invalid');
    expect((await postJson(`${base}/user`, { ...user, password: 12345678, secretToken: dbSecret })).status).toBe(400);
    expect((await call(`${base}/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"password":"${userPassword}",` })).status).toBe(400);
    const direct = await postJson(`${notification.origin}/notification/send`, { subject: 'Direct', content: 'Hi', toEmails: ['direct@example.com'] });
    expect(direct.status).toBe(200);
    expect(smtp.authAttempts.every((name) => name === smtpUser)).toBe(true);
  });
});

describe('with failing passwords', () => {
  it('answers 503 without the password when the database refuses the login, and recovers when it is right again', async () => {
    const base = `${usermgmt.origin}/usermgmt`;
    await setDbPassword(rotatedDbSecret);
    const [threads] = await admin.query<mysql.RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [dbUser]);
    for (const thread of threads) await admin.query(`KILL ${Number(thread.ID)}`).catch(() => undefined);
    let denied = '';
    await until(async () => {
      const answer = await call(`${base}/users`);
      expect(answer.status).toBe(503);
      if (answer.text.includes('ER_ACCESS_DENIED_ERROR')) denied = answer.text;
      return denied !== '';
    }, 'a 503 naming ER_ACCESS_DENIED_ERROR');
    expect(JSON.parse(denied)).toMatchObject({ statusCode: 503, message: 'Database unavailable, retry later', debugMessage: 'The database did not answer (ER_ACCESS_DENIED_ERROR)' });
    const ready = await call(`${base}/health/ready`);
    expect([ready.status, JSON.parse(ready.text)]).toEqual([503, { status: 'DOWN', reason: 'the database is unavailable (ER_ACCESS_DENIED_ERROR)' }]);
    expect((await postJson(`${base}/user`, { username: 'late', email: 'late@example.com', firstname: 'Late', password: userPassword })).status).toBe(503);

    await setDbPassword(dbSecret);
    await until(async () => (await call(`${base}/health/ready`)).status === 200, 'readiness to recover');
  });

  it('exits 1 at start without the password when the database refuses it', async () => {
    const failing = await startService('user-management', { ...dbEnv(wrongDbSecret), DB_STARTUP_TIMEOUT_MS: '1500' });
    expect(await failing.exited).toBe(1);
    expect(failing.output()).toContain('"code":"ER_ACCESS_DENIED_ERROR"');
  });

  it('answers 502 without the password when the SMTP server refuses the login, and never sends it in clear', async () => {
    const failing = await startService('notification', {
      AWS_MAIL_SERVER_HOST: '127.0.0.1',
      AWS_MAIL_SERVER_PORT: String(relay.port),
      AWS_MAIL_SERVER_USERNAME: smtpUser,
      AWS_MAIL_SERVER_PASSWORD: wrongSmtpSecret,
      NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
    });
    const answer = await postJson(`${failing.origin}/notification/send`, { subject: 'Nope', content: 'Hi', toEmails: ['nope@example.com'] });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text)).toMatchObject({ message: expect.stringMatching(/^The mail server did not accept the message: Invalid login: 535/) });
    // The log line comes through the child's stdout pipe, which may deliver it after the HTTP answer.
    await expect.poll(() => failing.output(), { timeout: 5000 }).toContain('"msg":"mail not sent"');
  });
});

describe('nothing secret leaked', () => {
  it('no password, password hash or SMTP credential in any response, log line or clear-text SMTP byte', async () => {
    for (const service of services) if (service.child.exitCode === null) service.child.kill('SIGTERM');
    await Promise.all(services.map((service) => service.exited));
    expect(storedHash).not.toBe('');
    const secrets = [
      ...forms(dbSecret, dbUser),
      ...forms(rotatedDbSecret, dbUser),
      ...forms(wrongDbSecret, dbUser),
      ...forms(smtpSecret, smtpUser),
      ...forms(wrongSmtpSecret, smtpUser),
      ...forms(userPassword, 'secretive'),
      storedHash,
      storedHash.slice('$2b$10$'.length),
    ];
    const places: Record<string, string> = {
      responses: answers.join('\n'),
      ...Object.fromEntries(services.map((service, i) => [`log of process ${i}`, service.output()])),
      'clear-text bytes to the SMTP server': relay.sent().toString('latin1'),
    };
    for (const [place, text] of Object.entries(places)) {
      expect(text.length, place).toBeGreaterThan(0);
      for (const secret of secrets) expect(text.includes(secret), `${place} holds ${secret}`).toBe(false);
    }
    // The check above means something only if the logs are verbose and the session went to TLS before AUTH.
    expect(places['log of process 1']).toContain('"msg":"incoming request"');
    expect(places['clear-text bytes to the SMTP server']).toContain('STARTTLS');
    expect(places['clear-text bytes to the SMTP server']).not.toContain('AUTH');
  });
});
