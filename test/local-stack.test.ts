import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseEnv, startSmtpServer, testDatabaseSettings, type TestSmtpServer } from '@canary/testkit';
import type { ReadyMessage } from '../tools/src/local-stack/ready-message.js';
import { isRunning, runStack, until, type StackProcess } from '../tools/test/stack-process.js';

// The stack creates this database itself (that is under test), so it is not made with createTestDatabase().
const database = `canary_localstack_${process.pid}_${randomBytes(4).toString('hex')}`;
const settings = testDatabaseSettings();
let smtp: TestSmtpServer;
const stacks: StackProcess[] = [];

function stackEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...databaseEnv(settings, database),
    AWS_MAIL_SERVER_HOST: '127.0.0.1',
    AWS_MAIL_SERVER_PORT: String(smtp.port),
    AWS_XRAY_SDK_ENABLED: 'false',
  };
}

function start(args: string[]): StackProcess {
  const stack = runStack(args, stackEnv());
  stacks.push(stack);
  return stack;
}

async function databaseExists(): Promise<boolean> {
  const connection = await mysql.createConnection({ ...settings, connectTimeout: 5000 });
  try {
    const [rows] = await connection.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', [database]);
    return rows.length === 1;
  } finally {
    await connection.end();
  }
}

beforeAll(async () => {
  smtp = await startSmtpServer();
});

afterAll(async () => {
  for (const stack of stacks) {
    if (stack.child.exitCode === null && stack.child.signalCode === null) {
      stack.child.kill('SIGTERM');
      await stack.exited;
    }
  }
  await smtp?.close();
  const connection = await mysql.createConnection({ ...settings, connectTimeout: 5000 });
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
  } finally {
    await connection.end();
  }
});

describe('local stack, 2 V1 + 2 V2 (node tools/dist/local-stack/main.js)', () => {
  let stack: StackProcess;
  let ready: ReadyMessage;
  let base: string;

  beforeAll(async () => {
    expect(await databaseExists()).toBe(false);
    stack = start(['--v1', '2', '--v2', '2', '--port', '0', '--notification-port', '0']);
    ready = await stack.ready;
    base = `http://127.0.0.1:${ready.usermgmtPort}/usermgmt`;
  }, 120_000);

  it('creates the database, starts two replicas of each version and prints where everything listens', async () => {
    expect(await databaseExists()).toBe(true);
    expect(ready.replicas.map((r) => `${r.name} ${r.version}`)).toEqual(['v1-1 V1', 'v1-2 V1', 'v2-1 V2', 'v2-2 V2']);
    expect(ready.mailPort).toBe(smtp.port);
    const output = stack.output();
    expect(output).toContain(`[stack] database ${database} created on ${settings.user}@${settings.host}:${settings.port}`);
    expect(output).toContain('Local canary stack: V1 ×2, V2 ×2, a random replica per new connection');
    expect(output).toMatch(new RegExp(`  user management +http://127\\.0\\.0\\.1:${ready.usermgmtPort}/usermgmt +${ready.usermgmtPid}\n`));
    expect(output).toMatch(new RegExp(`  notification balancer +http://127\\.0\\.0\\.1:${ready.notificationPort}/notification +${stack.child.pid}\n`));
    for (const replica of ready.replicas) {
      expect(output).toMatch(new RegExp(`  ${replica.name} \\(${replica.version}\\) +http://127\\.0\\.0\\.1:${replica.port}/notification +${replica.pid}`));
    }
    expect(output).toMatch(new RegExp(`  mail server +smtp://127\\.0\\.0\\.1:${smtp.port} +-\n`));
    expect(output).toMatch(new RegExp(`  database +mysql://${settings.user}@${settings.host.replaceAll('.', '\\.')}:${settings.port}/${database} +-\n`));
    expect(output).toContain(`Try: curl http://127.0.0.1:${ready.usermgmtPort}/usermgmt/notification-xray`);
    // Each child's log lines carry its name.
    expect(output).toMatch(/^\[v2-2\] \{"level":30/m);
    expect(output).toMatch(/^\[user-management\] \{/m);

    const replica = await fetch(`http://127.0.0.1:${ready.replicas[2]!.port}/notification/health-status`);
    expect(await replica.text()).toBe('Notification Service is UP and Running - V2');
  });

  it('creates, lists, updates and deletes a user over HTTP, and the account e-mail arrives', async () => {
    const user = {
      username: 'stackuser1',
      email: 'stack.user@example.com',
      role: 'ROLE_ADMIN',
      enabled: true,
      firstname: 'Stack',
      lastname: 'User',
      password: 'Pass@123',
    };
    const json = { 'content-type': 'application/json' };

    const created = await fetch(`${base}/user`, { method: 'POST', headers: json, body: JSON.stringify(user) });
    expect(created.status).toBe(200);
    expect(await created.text()).toBe('');

    const [mail] = await smtp.waitForMessages(1, 20_000);
    expect(mail).toMatchObject({
      recipients: ['stack.user@example.com'],
      subject: 'Stack Simplify account creation.',
      text: 'Hello Stack, your stack simplify account is created successfully!',
    });

    const listed = await fetch(`${base}/users`);
    expect(listed.status).toBe(200);
    const users = (await listed.json()) as Record<string, unknown>[];
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ username: 'stackuser1', email: 'stack.user@example.com', role: 'ROLE_ADMIN', enabled: true });
    expect(users[0]).not.toHaveProperty('password');

    const updated = await fetch(`${base}/user`, {
      method: 'PUT',
      headers: json,
      body: JSON.stringify({ ...user, email: 'stack.renamed@example.com', firstname: 'Renamed' }),
    });
    expect(updated.status).toBe(200);
    const read = await fetch(`${base}/user/stackuser1`);
    expect(await read.json()).toMatchObject({ email: 'stack.renamed@example.com', firstname: 'Renamed' });

    const deleted = await fetch(`${base}/user/stackuser1`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    const gone = await fetch(`${base}/user/stackuser1`);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ message: "User with user name stackuser1 doesn't exist!" });
  });

  it('has /usermgmt/notification-xray answered by both V1 and V2', async () => {
    const seen: Record<string, number> = {};
    for (let batch = 0; batch < 25 && Object.keys(seen).length < 2; batch += 1) {
      const answers = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const response = await fetch(`${base}/notification-xray`);
          expect(response.status).toBe(200);
          return (await response.json()) as { applicationname: string; appversion: string; message: string };
        }),
      );
      for (const answer of answers) {
        expect(answer).toMatchObject({ applicationname: 'Notification Microservice', message: 'Enabled AWS XRay' });
        seen[answer.appversion] = (seen[answer.appversion] ?? 0) + 1;
      }
    }
    expect(Object.keys(seen).sort()).toEqual(['V1', 'V2']);
  });

  it('stops everything on SIGTERM with exit code 0 and leaves no process behind', async () => {
    const pids = stack.pids();
    expect(pids).toHaveLength(5);
    expect(pids.every(isRunning)).toBe(true);

    stack.child.kill('SIGTERM');
    expect(await stack.exited).toEqual({ code: 0, signal: null });
    for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid}`).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    const output = stack.output();
    expect(output).toContain('[stack] SIGTERM: stopping');
    for (const name of ['user-management', 'v1-1', 'v1-2', 'v2-1', 'v2-2']) expect(output).toContain(`[stack] ${name} stopped (exited with code 0)`);
    expect(output).toMatch(/\[stack\] stopped\n$/);
  });
});

describe('local stack, other rows', () => {
  it('starts with no replica at all (0/0): the balancer has no backend and the proxy routes answer 502', async () => {
    const stack = start(['--v1', '0', '--v2', '0', '--port', '0', '--notification-port', '0']);
    const ready = await stack.ready;
    expect(ready.replicas).toEqual([]);
    expect(stack.output()).toContain('Local canary stack: V1 ×0, V2 ×0');

    const response = await fetch(`http://127.0.0.1:${ready.usermgmtPort}/usermgmt/notification-xray`);
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ status: 'BAD_GATEWAY', statusCode: 502 });
    const health = await fetch(`http://127.0.0.1:${ready.usermgmtPort}/usermgmt/health/live`);
    expect(health.status).toBe(200);

    stack.child.kill('SIGINT');
    expect(await stack.exited).toEqual({ code: 0, signal: null });
    expect(isRunning(ready.usermgmtPid)).toBe(false);
  });

  it('leaves no process behind when the stack itself is killed (SIGKILL)', async () => {
    const stack = start(['--v1', '1', '--v2', '1', '--port', '0', '--notification-port', '0']);
    const ready = await stack.ready;
    const pids = stack.pids();
    expect(pids).toHaveLength(3);

    stack.child.kill('SIGKILL');
    await stack.exited;
    // The children see their IPC channel close and end themselves.
    await until(() => !pids.some(isRunning), `pids ${pids.join(', ')} to end`);
    await expect(fetch(`http://127.0.0.1:${ready.usermgmtPort}/usermgmt/health/live`)).rejects.toThrow();
  });

  it('stops what it started and exits 1 when a start fails (user management port taken)', async () => {
    const taken = net.createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const stack = start(['--v1', '1', '--v2', '0', '--port', String(port), '--notification-port', '0']);
      expect(await stack.exited).toEqual({ code: 1, signal: null });
      const output = stack.output();
      expect(output).toContain(`listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      expect(output).toContain('[stack] v1-1 stopped (exited with code 0)');
      expect(output).toContain('local-stack: cannot start: user-management exited with code 1 before listening (its log is above)');
    } finally {
      taken.close();
    }
  });

  it('refuses a database it cannot reach, naming the variables', async () => {
    const stack = runStack(['--port', '0', '--notification-port', '0'], { ...stackEnv(), DB_PORT: '1' });
    stacks.push(stack);
    expect(await stack.exited).toEqual({ code: 1, signal: null });
    expect(stack.output()).toContain(
      `local-stack: cannot start: no MySQL-compatible server accepted ${settings.user}@${settings.host}:1 (set DB_HOSTNAME, DB_PORT, DB_USERNAME, DB_PASSWORD)`,
    );
  });

  it.each([
    [['--v1', '17'], '--v1 must be an integer from 0 to 16, not "17"'],
    [['--v2', '-1'], "Option '--v2' argument is ambiguous"],
    [['--v1'], "Option '--v1 <value>' argument missing"],
    [['--v1', 'two'], '--v1 must be an integer from 0 to 16, not "two"'],
    [['--port', '70000'], '--port must be an integer from 0 to 65535, not "70000"'],
    [['--replicas', '3'], "Unknown option '--replicas'"],
    [['3'], "Unexpected argument '3'"],
  ])('refuses %j with a usage message and exit code 2', async (args, message) => {
    const stack = start(args);
    expect(await stack.exited).toEqual({ code: 2, signal: null });
    expect(stack.output()).toContain(`local-stack: ${message}`);
    expect(stack.output()).toContain('Usage: npm start -- [--v1 N] [--v2 M] [--port P] [--notification-port Q]');
  });
});
