import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import mysql from 'mysql2/promise';
import { databaseEnv, testDatabaseSettings } from '@canary/testkit';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentile, wilsonInterval } from '../src/canary/statistics.js';

const run = promisify(execFile);
const cli = new URL('../dist/canary/main.js', import.meta.url).pathname;
const rowsCli = new URL('../dist/canary/rows-main.js', import.meta.url).pathname;

describe('statistics', () => {
  it('gives the Wilson interval of a share', () => {
    const [low, high] = wilsonInterval(50, 100);
    expect(low).toBeCloseTo(0.4038, 3);
    expect(high).toBeCloseTo(0.5962, 3);
    expect(wilsonInterval(0, 10)[0]).toBe(0);
    expect(wilsonInterval(10, 10)[1]).toBe(1);
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
  });

  it('picks nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('npm run canary', () => {
  let server: Server;
  let url: string;
  let calls = 0;
  const paths: string[] = [];

  beforeAll(async () => {
    // Stands in for user management: every 4th call is answered by V2, the rest V1.
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      if (req.url !== '/usermgmt/notification-xray' && req.url !== '/team-a/usermgmt/notification-xray') {
        res.writeHead(404).end();
        return;
      }
      calls += 1;
      const appversion = calls % 4 === 0 ? 'V2' : 'V1';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ applicationname: 'Notification Microservice', appversion, message: 'Enabled AWS XRay' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('reports the share of each version and passes a met expectation', async () => {
    calls = 0;
    const { stdout } = await run('node', [cli, '--url', url, '--requests', '400', '--concurrency', '4', '--expect-v2', '25', '--tolerance', '1']);
    expect(stdout).toContain('400 succeeded, 0 failed');
    expect(stdout).toMatch(/\| V1 \| 300 \| 75\.0% \| 70\.\d%–79\.\d% \|/);
    expect(stdout).toMatch(/\| V2 \| 100 \| 25\.0% \|/);
    expect(stdout).toContain('expected V2 25% ± 1 points, observed 25.0%');
    expect(stdout.trim().endsWith('OK')).toBe(true);
  });

  it('exits 1 when the split is not the expected one', async () => {
    calls = 0;
    const failure = await run('node', [cli, '--url', url, '--requests', '200', '--expect-v2', '50']).catch((err: { code: number; stdout: string }) => err);
    expect('code' in failure ? failure.code : 0).toBe(1);
    expect(failure.stdout).toContain('FAILED: V2 share 25.0% is not within 5 points of the expected 50%');
  });

  it('exits 1 and names the reason when calls fail', async () => {
    const failure = await run('node', [cli, '--url', 'http://127.0.0.1:1', '--requests', '3']).catch((err: { code: number; stdout: string }) => err);
    expect('code' in failure ? failure.code : 0).toBe(1);
    expect(failure.stdout).toContain('0 succeeded, 3 failed');
    expect(failure.stdout).toContain('failures: ECONNREFUSED ×3');
    expect(failure.stdout).toContain('FAILED: 3 of 3 calls failed; no call succeeded');
  });

  it('prints JSON figures with --json', async () => {
    calls = 0;
    const { stdout } = await run('node', [cli, '--url', url, '--requests', '8', '--json']);
    const report = JSON.parse(stdout) as { succeeded: number; versions: { version: string; count: number }[]; verdict: { ok: boolean } };
    expect(report.succeeded).toBe(8);
    expect(report.versions.map((v) => [v.version, v.count])).toEqual([['V1', 6], ['V2', 2]]);
    expect(report.verdict.ok).toBe(true);
  });

  it('keeps a path prefix of the base URL, as an ingress may serve user management under one', async () => {
    calls = 0;
    paths.length = 0;
    const { stdout } = await run('node', [cli, '--url', `${url}/team-a/`, '--requests', '4', '--json']);
    expect((JSON.parse(stdout) as { succeeded: number }).succeeded).toBe(4);
    expect(paths).toEqual(Array(4).fill('/team-a/usermgmt/notification-xray'));
  });

  it('bounds connecting with --timeout too: a TLS handshake that never comes fails each call at the timeout', async () => {
    // Accepts the TCP connection and never says a word: the client's TLS handshake waits, as on a blackholed ingress.
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const failure = await run('node', [cli, '--url', `https://127.0.0.1:${port}`, '--requests', '2', '--timeout', '300', '--json']).catch(
        (err: { code: number; stdout: string }) => err,
      );
      expect('code' in failure ? failure.code : 0).toBe(1);
      const report = JSON.parse(failure.stdout) as { failures: Record<string, number>; durationMs: number };
      expect(report.failures).toEqual({ UND_ERR_CONNECT_TIMEOUT: 2 });
      // Two calls one after the other, each cut at 300 ms; undici's own connect timeout would be 10 s each.
      expect(report.durationMs).toBeLessThan(10_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('rejects bad arguments with exit code 2 and the usage', async () => {
    for (const args of [[], ['--url', url], ['--url', 'ftp://x', '--requests', '1'], ['--url', url, '--requests', '0'], ['--url', url, '--requests', '0x10'], ['--url', url, '--requests', '5', '--tolerance', '3'], ['--url', url, '--requests', '5', '--bogus']]) {
      const failure = await run('node', [cli, ...args]).catch((err: { code: number; stderr: string }) => err);
      expect('code' in failure ? failure.code : 0).toBe(2);
      expect(failure.stderr).toContain('usage: npm run canary');
    }
  });
});

describe('npm run canary:rows', () => {
  it('drops its database when interrupted', async () => {
    const settings = testDatabaseSettings();
    const admin = await mysql.createConnection(settings);
    const databases = async (): Promise<string[]> => {
      const [rows] = await admin.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE 'canary\\_rows\\_%'");
      return rows.map((row) => String(Object.values(row)[0]));
    };
    try {
      const before = new Set(await databases());
      const child = spawn('node', [rowsCli, '--requests', '1000000', '--policies', 'keep-alive'], {
        env: { ...process.env, ...databaseEnv(settings) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = once(child, 'exit');
      let created: string | undefined;
      for (let waited = 0; !created && waited < 30_000; waited += 100) {
        created = (await databases()).find((name) => !before.has(name));
        if (!created) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(created, `the run's database never appeared: ${stderr}`).toBeDefined();
      child.kill('SIGINT');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(130);
      expect(stderr).toContain('SIGINT: stopping the stack and dropping the rows database');
      expect(await databases()).not.toContain(created);
    } finally {
      await admin.end();
    }
  }, 60_000);
});
