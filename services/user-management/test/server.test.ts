import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListeningMessage } from '@canary/service-kit';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { closedPort, startFakeNotification, validUser } from './support/helpers.js';

const serverEntry = fileURLToPath(new URL('../dist/bundle.js', import.meta.url));

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ChildProcess;
  exited: Promise<Finished>;
}

/** Starts the built server with exactly `env` (plus PATH) and an IPC channel, collecting its output. */
function startServer(env: Record<string, string>): Started {
  const child = spawn(process.execPath, [serverEntry], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, ...output }));
  return { child, exited };
}

async function listeningPort(started: Started): Promise<number> {
  const message = await Promise.race([
    once(started.child, 'message').then(([m]) => m as ListeningMessage),
    started.exited.then((f) => {
      throw new Error(`server exited with ${f.code} before listening: ${f.stderr}${f.stdout}`);
    }),
  ]);
  expect(message).toEqual({ type: 'listening', service: 'user-management', port: expect.any(Number) });
  return message.port;
}

const secret = 'Sup3r-Secret-Pw';

beforeAll(() => {
  if (!existsSync(serverEntry)) throw new Error(`${serverEntry} is missing: build first with npx tsc -b services/user-management`);
});

describe('the server entry', () => {
  it.each([
    [{ PORT: 'eighty' }, 'user-management: Invalid environment: PORT must be integer\n'],
    [{ DB_NAME: 'bad-name;' }, 'user-management: Invalid environment: DB_NAME must match pattern "^[A-Za-z0-9_$]{1,64}$"\n'],
    [{ OUTBOX_POLL_INTERVAL_MS: '0' }, 'user-management: Invalid environment: OUTBOX_POLL_INTERVAL_MS must be >= 50\n'],
    [{ HOST: '999.1.1.1' }, 'user-management: Invalid environment: HOST must be a host name or an IP address\n'],
    [{ DB_HOSTNAME: ' ' }, 'user-management: Invalid environment: DB_HOSTNAME must be a host name or an IP address\n'],
    [{ NOTIFICATION_SERVICE_HOST: 'http://notification' }, 'user-management: Invalid environment: NOTIFICATION_SERVICE_HOST must be a host name or an IP address\n'],
    [
      { OUTBOX_RETRY_BASE_MS: '100000', OUTBOX_RETRY_MAX_MS: '10' },
      'user-management: Invalid environment: OUTBOX_RETRY_BASE_MS must not be greater than OUTBOX_RETRY_MAX_MS\n',
    ],
  ])('refuses to start on %j, naming the variable', async (env, message) => {
    const finished = await startServer(env).exited;
    expect(finished.code).toBe(1);
    expect(finished.stderr).toBe(message);
  });

  it('waits for the database with backoff, then gives up after DB_STARTUP_TIMEOUT_MS without logging the password', async () => {
    const port = await closedPort();
    const finished = await startServer({
      DB_HOSTNAME: '127.0.0.1',
      DB_PORT: String(port),
      DB_PASSWORD: secret,
      DB_STARTUP_TIMEOUT_MS: '2000',
      PORT: '0',
    }).exited;
    expect(finished.code).toBe(1);
    const lines = finished.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const waits = lines.filter((line) => line.msg === 'waiting for the database');
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits[0]).toMatchObject({ attempt: 1, code: 'ECONNREFUSED', target: `127.0.0.1:${port}/usermgmt`, retryInMs: 500 });
    expect(waits[1]).toMatchObject({ attempt: 2, retryInMs: 1000 });
    const fatal = lines.find((line) => line.msg === 'cannot start: the database is not usable');
    expect((fatal?.err as { message?: string }).message).toBe(
      `database 127.0.0.1:${port}/usermgmt did not answer within DB_STARTUP_TIMEOUT_MS=2000 (last error: ECONNREFUSED)`,
    );
    expect(finished.stdout + finished.stderr).not.toContain(secret);
  });

  describe('with a database', () => {
    let db: TestDatabase;

    beforeAll(async () => {
      db = await createTestDatabase('umserver');
    });

    afterAll(async () => {
      await db?.drop();
    });

    it('migrates, listens, serves, and stops cleanly on SIGTERM; a second start finds the schema up to date', async () => {
      const env = { ...db.env, PORT: '0', HOST: '127.0.0.1', NOTIFICATION_SERVICE_HOST: '127.0.0.1', NOTIFICATION_SERVICE_PORT: String(await closedPort()) };
      const first = startServer(env);
      const port = await listeningPort(first);
      const base = `http://127.0.0.1:${port}/usermgmt`;
      expect((await fetch(`${base}/health/ready`)).status).toBe(200);
      const created = await fetch(`${base}/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(validUser) });
      expect(created.status).toBe(200);
      expect(await (await fetch(`${base}/user/${validUser.username}`)).json()).toMatchObject({ username: validUser.username });
      expect((await fetch(`${base}/notification-xray`)).status).toBe(502);
      first.child.kill('SIGTERM');
      const finished = await first.exited;
      expect(finished.code).toBe(0);
      // A 502 is the notification service's failure, not the client's: the operator finds why in the log.
      const warnings = finished.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { level: number; msg: string; statusCode?: number; notification?: Record<string, unknown> })
        .filter((line) => line.level === 40 && line.msg !== 'outbox: delivery failed; will retry');
      expect(warnings).toEqual([
        expect.objectContaining({
          msg: 'notification service call failed',
          statusCode: 502,
          notification: expect.objectContaining({ kind: 'unavailable', code: 'ECONNREFUSED', target: expect.stringMatching(/\/notification\/xray$/) }),
        }),
      ]);
      expect(finished.stdout).toContain('"msg":"schema migrated"');
      expect(finished.stdout).toContain('"msg":"stopped"');
      expect(finished.stdout).not.toContain(validUser.password);

      const second = startServer(env);
      await listeningPort(second);
      second.child.kill('SIGTERM');
      const again = await second.exited;
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('"applied":[],"msg":"schema up to date"');
    });

    it('on SIGTERM turns unready, lets a request in flight finish, then exits 0', async () => {
      const fake = await startFakeNotification();
      fake.behaviour = 'hang';
      try {
        const env = {
          ...db.env,
          PORT: '0',
          HOST: '127.0.0.1',
          NOTIFICATION_SERVICE_HOST: '127.0.0.1',
          NOTIFICATION_SERVICE_PORT: String(fake.port),
          NOTIFICATION_RESPONSE_TIMEOUT_MS: '1500',
          SHUTDOWN_DRAIN_MS: '300',
        };
        const started = startServer(env);
        const base = `http://127.0.0.1:${await listeningPort(started)}/usermgmt`;
        // Held by the hanging notification service until the 1.5 s response timeout: in flight during the shutdown.
        const inFlight = fetch(`${base}/notification-xray`);
        while (!fake.requests.some((r) => r.url === '/notification/xray')) await new Promise((resolve) => setTimeout(resolve, 20));
        started.child.kill('SIGTERM');
        await new Promise((resolve) => setTimeout(resolve, 100));
        const ready = await fetch(`${base}/health/ready`);
        expect([ready.status, await ready.json()]).toEqual([503, { status: 'DOWN', reason: 'shutting down' }]);
        const res = await inFlight;
        expect(res.status).toBe(504);
        expect(res.headers.get('connection')).toBe('close');
        expect(((await res.json()) as { message: string }).message).toBe('Notification service timed out: no response within 1500 ms');
        const finished = await started.exited;
        expect(finished.code).toBe(0);
        expect(finished.stdout).toContain('"msg":"stopped"');
      } finally {
        await fake.close();
      }
    });
  });
});
