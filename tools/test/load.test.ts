import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { testDatabaseSettings } from '@canary/testkit';
import { parseLoadOptions, UsageError } from '../src/load/load-options.js';
import { percentiles, sequence } from '../src/load/request-mix.js';

const loadEntry = fileURLToPath(new URL('../dist/load/main.js', import.meta.url));

describe('load options', () => {
  it('defaults to 200 clients for 60 s, with a warm-up, a settle and forced GCs', () => {
    expect(parseLoadOptions([])).toEqual({ durationSeconds: 60, connections: 200, warmupSeconds: 5, settleSeconds: 10, timeoutSeconds: 30, users: 100, gc: true });
    expect(parseLoadOptions(['--duration', '5', '--connections', '20', '--no-gc'])).toMatchObject({ durationSeconds: 5, connections: 20, gc: false });
    expect(parseLoadOptions(['--help'])).toBeUndefined();
  });

  it.each([
    [['--duration', '0'], '--duration must be an integer from 1 to 3600'],
    [['--connections', 'many'], '--connections must be an integer from 1 to 5000'],
    [['--users', '1.5'], '--users must be an integer from 1 to 100000'],
    [['--rps', '5'], "Unknown option '--rps'"],
  ])('refuses %j', (args, message) => {
    expect(() => parseLoadOptions(args)).toThrow(UsageError);
    expect(() => parseLoadOptions(args)).toThrow(message);
  });
});

describe('request mix', () => {
  it('has every route of the brief, reads first, one create in ten', () => {
    expect(new Set(sequence)).toEqual(new Set(['GET /usermgmt/users', 'GET /usermgmt/user/{username}', 'POST /usermgmt/user', 'GET /usermgmt/notification-xray']));
    expect(sequence.filter((route) => route === 'POST /usermgmt/user')).toHaveLength(1);
    expect(sequence).toHaveLength(10);
  });

  it('computes nearest-rank percentiles', () => {
    const values = Array.from({ length: 200 }, (_, i) => 200 - i);
    expect(percentiles(values)).toEqual({ p50: 100, p99: 198, max: 200 });
    expect(percentiles([])).toEqual({ p50: 0, p99: 0, max: 0 });
  });
});

describe('npm run load, quick', () => {
  it('runs 20 clients for 5 s against a real local stack with zero failures, reports every route and process, and drops its database', { timeout: 180_000 }, async () => {
    if (!existsSync(loadEntry)) throw new Error(`${loadEntry} is missing: build first (npx tsc -b tools)`);
    const child = spawn(process.execPath, [loadEntry, '--duration', '5', '--connections', '20', '--warmup', '1', '--settle', '1', '--users', '20'], {
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code, `${stderr}\n${stdout}`).toBe(0);

    expect(stdout).toContain('## Load: 20 clients for 5 s against the local stack');
    expect(stdout).toMatch(/non-2xx 0, connection errors 0 \(timeouts 0\)/);
    for (const route of new Set(sequence)) expect(stdout).toMatch(new RegExp(`\\| ${route.replace(/[{}/]/g, '\\$&')} +\\| +(\\d+) \\| +200: \\1 \\|`));
    expect(stdout).toMatch(/notification-xray answered by: V1 \d+, V2 \d+/);
    expect(stdout).toMatch(/account e-mails: sent \d+; the outbox was empty [\d.]+ s after the load/);
    for (const process of ['user-management', 'v1-1', 'v1-2', 'v2-1', 'v2-2']) expect(stdout).toMatch(new RegExp(`\\| ${process} \\(pid \\d+\\) +\\|( +[\\d.+-]+ \\|){7}`));
    expect(stdout.trim().split('\n').at(-1)).toBe('Result: PASS (no failed request)');

    const database = /with database (canary_load_\w+)/.exec(stderr)?.[1];
    expect(stderr).toContain(`database ${database} dropped`);
    const connection = await mysql.createConnection({ ...testDatabaseSettings(), connectTimeout: 5000 });
    try {
      const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
      expect(rows).toEqual([]);
    } finally {
      await connection.end();
    }
  });
});
