import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startSmtpServer, type TestDatabase, type TestSmtpServer } from '@canary/testkit';
import { serviceBundle } from '../tools/src/bundle/bundle-paths.js';

/**
 * Graceful shutdown of both services as real processes (`node services/<name>/dist/bundle.js`, as their images run
 * them): requests in flight at SIGTERM finish with 200, readiness answers 503 during SHUTDOWN_DRAIN_MS while other
 * routes still serve, new connections are refused once the listener closes (while the in-flight requests still
 * run), and the process exits 0; a request that outlives SHUTDOWN_GRACE_MS makes it exit 1.
 */

const rootDir = fileURLToPath(new URL('..', import.meta.url));
const entries = {
  'user-management': serviceBundle(rootDir, 'user-management'),
  notification: serviceBundle(rootDir, 'notification'),
};

interface Service {
  child: ChildProcess;
  port: number;
  origin: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

async function startService(name: keyof typeof entries, env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, [entries[name]], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', AWS_XRAY_SDK_ENABLED: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  running.add(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'close').then(([code, signal]) => {
    running.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  const port = await Promise.race([
    once(child, 'message').then(([message]) => (message as { port: number }).port),
    exited.then(() => {
      throw new Error(`${name} exited before listening:\n${output}`);
    }),
  ]);
  return { child, port, origin: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** Resolves once `check` holds, polling; the deadline only keeps a broken service from hanging the suite. */
async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Whether a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A request whose outcome is recorded, so the test can see that it is still pending. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const tracked = promise.finally(() => (done = true));
  tracked.catch(() => undefined);
  return { promise: tracked, settled: () => done };
}

/** A promise with its resolve function, to hold a server's answer until the test lets it go. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

interface Readiness {
  status: number;
  body: unknown;
}

async function readiness(url: string): Promise<Readiness> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

function logLines(service: Service): { msg?: string; level?: number }[] {
  return service
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; level?: number });
}

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

describe('user management on SIGTERM', () => {
  let db: TestDatabase;
  /** The notification service's stand-in: /notification/xray answers wait for `xrayGate`. */
  let notification: Server;
  let xrayGate = gate();
  let xrayArrived = 0;
  let notificationPort: number;
  /** Holds a row lock; ended in afterAll if a test fails while holding it, or DROP DATABASE would wait for it. */
  let locker: mysql.Connection | undefined;
  const user = { username: 'drainuser', email: 'drain@example.com', firstname: 'Drain', lastname: 'User', password: 'Pass@123' };

  beforeAll(async () => {
    db = await createTestDatabase('umshutdown');
    notification = createServer((request: IncomingMessage, response: ServerResponse) => {
      request.resume();
      if (request.url === '/notification/xray') {
        xrayArrived++;
        void xrayGate.opened.then(() =>
          response.writeHead(200, { 'content-type': 'application/json' }).end('{"applicationname":"Notification Microservice","appversion":"V1","message":"Enabled AWS XRay"}'),
        );
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"messageId":"<x@example.com>","accepted":[],"rejected":[]}');
    });
    notification.listen(0, '127.0.0.1');
    await once(notification, 'listening');
    notificationPort = (notification.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    locker?.destroy();
    xrayGate.open();
    notification?.closeAllConnections();
    await new Promise((resolve) => notification?.close(resolve));
    await db?.drop();
  });

  const env = (over: Record<string, string>) => ({
    ...db.env,
    NOTIFICATION_SERVICE_HOST: '127.0.0.1',
    NOTIFICATION_SERVICE_PORT: String(notificationPort),
    NOTIFICATION_RESPONSE_TIMEOUT_MS: '60000',
    ...over,
  });

  it('drains: readiness 503, other routes still answer, the listener closes, a held write and a held proxy call finish 200, exit 0', async () => {
    const service = await startService('user-management', env({ SHUTDOWN_DRAIN_MS: '5000', SHUTDOWN_GRACE_MS: '60000' }));
    const base = `${service.origin}/usermgmt`;
    const json = { 'content-type': 'application/json' };
    expect((await fetch(`${base}/user`, { method: 'POST', headers: json, body: JSON.stringify(user) })).status).toBe(200);
    expect(await readiness(`${base}/health/ready`)).toEqual({ status: 200, body: { status: 'UP' } });

    // A write held by a row lock another connection keeps, and a proxy call held by the notification stand-in.
    locker = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
    await locker.beginTransaction();
    await locker.query('SELECT * FROM users WHERE username = ? FOR UPDATE', [user.username]);
    const update = track(fetch(`${base}/user`, { method: 'PUT', headers: json, body: JSON.stringify({ ...user, password: undefined, email: 'drained@example.com' }) }));
    await until(async () => {
      if (update.settled()) throw new Error(`the update was answered before it waited: ${(await update.promise).status} ${await (await update.promise).text()}`);
      // The statement runs while the lock is held, so it is waiting (MariaDB's INNODB_TRX does not always list the wait).
      const [rows] = await locker!.query<mysql.RowDataPacket[]>(
        "SELECT COUNT(*) AS waiting FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND = 'Query' AND INFO LIKE 'UPDATE users SET%'",
        [db.database],
      );
      return Number(rows[0]?.waiting) === 1;
    }, 'the update to wait for the row lock');
    xrayGate = gate();
    const arrivedBefore = xrayArrived;
    const proxied = track(fetch(`${base}/notification-xray`));
    await until(() => xrayArrived > arrivedBefore, 'the proxy call to reach the notification stand-in');

    service.child.kill('SIGTERM');
    await until(async () => (await readiness(`${base}/health/ready`)).status === 503, 'readiness to turn 503');
    expect(await readiness(`${base}/health/ready`)).toEqual({ status: 503, body: { status: 'DOWN', reason: 'shutting down' } });
    const live = await fetch(`${base}/health/live`);
    expect([live.status, await live.json()]).toEqual([200, { status: 'UP' }]);
    // During the drain the pod is still in the Service's endpoints for a moment: requests must still succeed.
    const list = await fetch(`${base}/users`);
    expect(list.status).toBe(200);
    expect(list.headers.get('connection')).toBe('close');
    expect(((await list.json()) as { username: string }[]).map((u) => u.username)).toEqual([user.username]);

    await until(() => refused(service.port), 'the listener to close', 30_000);
    expect([update.settled(), proxied.settled(), service.child.exitCode]).toEqual([false, false, null]);

    await locker.commit();
    await locker.end();
    locker = undefined;
    const updated = await update.promise;
    expect([updated.status, await updated.text(), updated.headers.get('connection')]).toEqual([200, '', 'close']);
    xrayGate.open();
    const proxiedAnswer = await proxied.promise;
    expect([proxiedAnswer.status, await proxiedAnswer.json()]).toEqual([200, { applicationname: 'Notification Microservice', appversion: 'V1', message: 'Enabled AWS XRay' }]);

    expect(await service.exited).toEqual({ code: 0, signal: null });
    const messages = logLines(service).map((line) => line.msg);
    expect(messages, service.output()).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
    // The write went through the pool after the listener closed: the pool closes only after in-flight requests.
    const check = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
    const [rows] = await check.query<mysql.RowDataPacket[]>('SELECT email FROM users WHERE username = ?', [user.username]);
    await check.end();
    expect(rows.map((row) => row.email)).toEqual(['drained@example.com']);
  });

  it('exits 1 when a request outlives SHUTDOWN_GRACE_MS, and the client sees the connection end', async () => {
    const service = await startService('user-management', env({ SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_GRACE_MS: '1000' }));
    xrayGate = gate();
    const arrivedBefore = xrayArrived;
    const held = track(fetch(`${service.origin}/usermgmt/notification-xray`));
    await until(() => xrayArrived > arrivedBefore, 'the proxy call to reach the notification stand-in');
    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 1, signal: null });
    await expect(held.promise).rejects.toThrow();
    const errors = logLines(service).filter((line) => line.level === 50);
    expect(errors.map((line) => line.msg)).toEqual(['killed by timeout (1000ms)']);
  });
});

describe('notification on SIGTERM', () => {
  let smtp: TestSmtpServer;
  /** MAIL FROM answers wait for `smtpGate`: a slow mail server holds the send in flight. */
  let smtpGate = gate();
  let mailsStarted = 0;
  const mail = { subject: 'Drain', content: 'Sent across a shutdown', toEmails: ['drain@example.com'] };

  beforeAll(async () => {
    smtp = await startSmtpServer({
      server: {
        onMailFrom(_address, _session, callback) {
          mailsStarted++;
          void smtpGate.opened.then(() => callback());
        },
      },
    });
  });

  afterAll(async () => {
    smtpGate.open();
    await smtp?.close();
  });

  const env = (over: Record<string, string>) => ({
    AWS_MAIL_SERVER_HOST: '127.0.0.1',
    AWS_MAIL_SERVER_PORT: String(smtp.port),
    MAIL_SEND_TIMEOUT_MS: '60000',
    ...over,
  });
  const send = (origin: string) =>
    fetch(`${origin}/notification/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(mail) });

  it('drains: readiness 503, other routes still answer, the listener closes, a send held by a slow SMTP server finishes 200, exit 0', async () => {
    const service = await startService('notification', env({ APP_VERSION: 'V2', SHUTDOWN_DRAIN_MS: '5000', SHUTDOWN_GRACE_MS: '60000' }));
    const base = `${service.origin}/notification`;
    expect(await readiness(`${base}/health/ready`)).toEqual({ status: 200, body: { status: 'UP', version: 'V2' } });
    smtpGate = gate();
    const startedBefore = mailsStarted;
    const sending = track(send(service.origin));
    await until(() => mailsStarted > startedBefore, 'the send to reach MAIL FROM');

    service.child.kill('SIGTERM');
    await until(async () => (await readiness(`${base}/health/ready`)).status === 503, 'readiness to turn 503');
    expect(await readiness(`${base}/health/ready`)).toEqual({ status: 503, body: { status: 'DOWN', reason: 'shutting down' } });
    const xray = await fetch(`${base}/xray`);
    expect([xray.status, xray.headers.get('connection'), ((await xray.json()) as { appversion: string }).appversion]).toEqual([200, 'close', 'V2']);

    await until(() => refused(service.port), 'the listener to close', 30_000);
    expect([sending.settled(), service.child.exitCode, smtp.messages.length]).toEqual([false, null, 0]);

    smtpGate.open();
    const sent = await sending.promise;
    expect([sent.status, sent.headers.get('connection')]).toEqual([200, 'close']);
    expect(await sent.json()).toMatchObject({ accepted: ['drain@example.com'], rejected: [] });
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(smtp.messages.map((m) => [m.subject, m.recipients])).toEqual([['Drain', ['drain@example.com']]]);
    expect(logLines(service).map((line) => line.msg), service.output()).toContain('stopped');
  });

  it('exits 1 when a send outlives SHUTDOWN_GRACE_MS, and the client sees the connection end', async () => {
    const service = await startService('notification', env({ SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_GRACE_MS: '1000' }));
    smtpGate = gate();
    const startedBefore = mailsStarted;
    const held = track(send(service.origin));
    await until(() => mailsStarted > startedBefore, 'the send to reach MAIL FROM');
    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 1, signal: null });
    await expect(held.promise).rejects.toThrow();
    expect(logLines(service).filter((line) => line.level === 50).map((line) => line.msg)).toEqual(['killed by timeout (1000ms)']);
    smtpGate.open();
  });
});
