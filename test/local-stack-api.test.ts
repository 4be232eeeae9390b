import { randomBytes } from 'node:crypto';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseEnv, testDatabaseSettings } from '@canary/testkit';
import { startLocalStack, type Exit, type LocalStack } from '../tools/src/local-stack/index.js';
import { isRunning, until } from '../tools/test/stack-process.js';

const database = `canary_stackapi_${process.pid}_${randomBytes(4).toString('hex')}`;
const settings = testDatabaseSettings();
const lines: string[] = [];
const unexpected: [string, Exit][] = [];
let stack: LocalStack;

function env(): NodeJS.ProcessEnv {
  const inherited = { ...process.env };
  // No mail server configured: the stack's own sink takes the mail.
  for (const key of Object.keys(inherited)) if (key.startsWith('AWS_MAIL_SERVER_')) delete inherited[key];
  return {
    ...inherited,
    ...databaseEnv(settings, database),
    AWS_XRAY_SDK_ENABLED: 'false',
    LOG_LEVEL: 'warn',
  };
}

function versions(): string[] {
  return stack.replicas().map((r) => `${r.name} ${r.version}`);
}

/** Which versions answer `/usermgmt/notification-xray` over `calls` calls, 8 at a time. */
async function answeringVersions(calls: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let done = 0; done < calls; done += 8) {
    const answers = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const response = await fetch(`http://127.0.0.1:${stack.usermgmtPort}/usermgmt/notification-xray`);
        expect(response.status).toBe(200);
        return ((await response.json()) as { appversion: string }).appversion;
      }),
    );
    for (const answer of answers) seen.add(answer);
  }
  return [...seen].sort();
}

beforeAll(async () => {
  stack = await startLocalStack({
    v1: 4,
    v2: 0,
    usermgmtPort: 0,
    notificationPort: 0,
    env: env(),
    healthIntervalMs: 200,
    write: (line) => lines.push(line),
    onUnexpectedExit: (name, exit) => unexpected.push([name, exit]),
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  const connection = await mysql.createConnection({ ...settings, connectTimeout: 5000 });
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
  } finally {
    await connection.end();
  }
});

describe('startLocalStack()', () => {
  it('prints every message its SMTP sink receives when no mail server is configured', async () => {
    expect(stack.mail).toEqual({ host: '127.0.0.1', port: expect.any(Number), sink: true });
    const response = await fetch(`http://127.0.0.1:${stack.usermgmtPort}/usermgmt/user`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        username: 'sinkuser',
        email: 'sink.user@example.com',
        role: 'ROLE_USER',
        enabled: true,
        firstname: 'Sink',
        lastname: 'User',
        password: 'Pass@123',
      }),
    });
    expect(response.status).toBe(200);
    await until(() => lines.includes('[mail]   | Hello Sink, your stack simplify account is created successfully!'), 'the mail in the log');
    const start = lines.indexOf('[mail] message 1');
    expect(lines.slice(start, start + 5)).toEqual([
      '[mail] message 1',
      '[mail]   from:    no-reply@example.com',
      '[mail]   to:      sink.user@example.com',
      '[mail]   subject: Stack Simplify account creation.',
      '[mail]   | Hello Sink, your stack simplify account is created successfully!',
    ]);
  });

  it('moves through every row of the table, new replicas first, removed ones stopped', async () => {
    expect(versions()).toEqual(['v1-1 V1', 'v1-2 V1', 'v1-3 V1', 'v1-4 V1']);
    expect(await answeringVersions(40)).toEqual(['V1']);

    const rows: [number, number, string[]][] = [
      [3, 1, ['v1-1 V1', 'v1-2 V1', 'v1-3 V1', 'v2-1 V2']],
      [2, 2, ['v1-1 V1', 'v1-2 V1', 'v2-1 V2', 'v2-2 V2']],
      [1, 3, ['v1-1 V1', 'v2-1 V2', 'v2-2 V2', 'v2-3 V2']],
      [0, 4, ['v2-1 V2', 'v2-2 V2', 'v2-3 V2', 'v2-4 V2']],
    ];
    for (const [v1, v2, expected] of rows) {
      const before = stack.replicas();
      await stack.scale({ v1, v2 });
      expect(versions()).toEqual(expected);
      const now = stack.replicas();
      for (const gone of before.filter((r) => !now.some((n) => n.pid === r.pid))) {
        expect(isRunning(gone.pid), `${gone.name} still runs`).toBe(false);
        expect(lines).toContain(`[stack] draining ${gone.name}: no new connections, then SIGTERM`);
        expect(lines).toContain(`[stack] ${gone.name} stopped (exited with code 0)`);
      }
      // The balancer uses exactly the replicas the stack reports, all of them healthy.
      expect(
        stack.balancer
          .backends()
          .map((b) => `${b.port} ${b.healthy}`)
          .sort(),
      ).toEqual(now.map((r) => `${r.port} true`).sort());
    }
    expect(await answeringVersions(40)).toEqual(['V2']);
    expect(unexpected).toEqual([]);
  });

  it('refuses a row outside 0 to 16 replicas', async () => {
    await expect(stack.scale({ v1: 17, v2: 0 })).rejects.toThrow('v1 must be an integer from 0 to 16, not 17');
    await expect(stack.scale({ v1: 1, v2: 1.5 })).rejects.toThrow('v2 must be an integer from 0 to 16, not 1.5');
  });

  it('reports a replica that dies unexpectedly and stops sending it connections', async () => {
    const victim = stack.replicas().at(-1)!;
    process.kill(victim.pid, 'SIGKILL');
    await until(() => unexpected.length === 1, 'the exit to be reported');
    expect(unexpected).toEqual([[victim.name, { code: null, signal: 'SIGKILL' }]]);
    expect(lines).toContain(`[stack] ${victim.name} (pid ${victim.pid}) was killed by SIGKILL unexpectedly; the balancer no longer uses it`);
    expect(stack.replicas().map((r) => r.name)).not.toContain(victim.name);
    expect(stack.balancer.backends().map((b) => b.port)).not.toContain(victim.port);
    expect(await answeringVersions(16)).toEqual(['V2']);
  });

  it('close() stops every child, the balancer and the sink', async () => {
    const pids = [stack.usermgmtPid, ...stack.replicas().map((r) => r.pid)];
    const ports = [stack.notificationPort, stack.mail.port];
    await stack.close();
    for (const pid of pids) expect(isRunning(pid), `pid ${pid}`).toBe(false);
    for (const port of ports) {
      const code = await new Promise<string>((resolve) => {
        net.connect({ host: '127.0.0.1', port }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
      });
      expect(code, `port ${port}`).toBe('ECONNREFUSED');
    }
    expect(lines.at(-1)).toBe('[stack] stopped');
    await expect(stack.scale({ v1: 1, v2: 0 })).rejects.toThrow('the stack is stopping');
  });
});
