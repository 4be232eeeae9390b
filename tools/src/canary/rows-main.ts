import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { numberFlag, releaseOnSignals, UsageError } from '../cli-options.js';
import { startLocalStack, type LocalStack } from '../local-stack/index.js';
import { runCanaryCheck, v2Percent } from './canary-check.js';
import { connectionPolicies, courseRows, type ConnectionPolicy } from './course-rows.js';

const usage = `usage: npm run canary:rows -- [--requests N] [--policies ${connectionPolicies.join(',')}]

For each connection policy given (default instance-balanced,keep-alive) and each row of the course's table, starts
the local stack with its own database, makes N calls (default 1000) to /usermgmt/notification-xray sequentially over
one kept-alive connection and N from 16 concurrent clients, and prints the V2 share and throughput side by side.`;

interface Measurement {
  policy: ConnectionPolicy;
  row: string;
  expected: number;
  sequential: { v2: number; rps: number; failed: number };
  concurrent: { v2: number; rps: number; failed: number };
}

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${usage}\n`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({ options: { requests: { type: 'string' }, policies: { type: 'string' }, help: { type: 'boolean' } } });
  } catch (err) {
    fail((err as Error).message);
  }
})();
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const requests = (() => {
  try {
    return numberFlag('requests', values.requests, 1000, 1, 1_000_000);
  } catch (err) {
    fail((err as UsageError).message);
  }
})();
const policies = (values.policies ?? 'instance-balanced,keep-alive').split(',') as ConnectionPolicy[];
for (const p of policies) if (!connectionPolicies.includes(p)) fail(`unknown policy ${p}`);

const db = {
  host: process.env.DB_HOSTNAME || '127.0.0.1',
  port: Number(process.env.DB_PORT || 3306),
  user: process.env.DB_USERNAME || 'root',
  password: process.env.DB_PASSWORD ?? '',
};
const database = `canary_rows_${randomBytes(4).toString('hex')}`;
const results: Measurement[] = [];

/** Drops the run's database; a failure to do so is said, not thrown, so it never hides why the run stopped. */
async function dropDatabase(): Promise<void> {
  try {
    const c = await mysql.createConnection(db);
    try {
      await c.query(`DROP DATABASE IF EXISTS \`${database}\``);
    } finally {
      await c.end();
    }
  } catch (err) {
    process.stderr.write(`could not drop database ${database}: ${(err as Error).message}\n`);
  }
}

let current: LocalStack | undefined;
releaseOnSignals('stopping the stack and dropping the rows database', async () => {
  await current?.close().catch(() => undefined);
  await dropDatabase();
});

try {
  for (const policy of policies) {
    for (const row of courseRows) {
      const stack = await startLocalStack({
        v1: row.v1,
        v2: row.v2,
        usermgmtPort: 0,
        notificationPort: 0,
        env: { ...process.env, DB_NAME: database, LOG_LEVEL: 'warn', AWS_XRAY_SDK_ENABLED: 'false' },
        usermgmtEnv: { NOTIFICATION_CONNECTION_POLICY: policy },
        write: () => undefined,
      });
      current = stack;
      try {
        const url = `http://${stack.host}:${stack.usermgmtPort}`;
        const seq = await runCanaryCheck({ url, requests, concurrency: 1, timeoutMs: 10_000 });
        const con = await runCanaryCheck({ url, requests, concurrency: 16, timeoutMs: 10_000 });
        const m: Measurement = {
          policy,
          row: `${row.v1}/${row.v2}`,
          expected: row.v2Percent,
          sequential: { v2: v2Percent(seq), rps: seq.requestsPerSecond, failed: seq.failed },
          concurrent: { v2: v2Percent(con), rps: con.requestsPerSecond, failed: con.failed },
        };
        results.push(m);
        process.stderr.write(`${policy} ${m.row}: sequential ${m.sequential.v2.toFixed(1)}%, 16 clients ${m.concurrent.v2.toFixed(1)}%\n`);
      } finally {
        current = undefined;
        await stack.close();
      }
    }
  }
} catch (err) {
  process.stderr.write(`canary:rows failed: ${(err as Error).message}\n`);
  await dropDatabase();
  process.exit(1);
}
await dropDatabase();

const within = (observed: number, expected: number): string => (Math.abs(observed - expected) <= 5 ? '' : ' ✗');
const lines = [
  `${requests} calls per cell; V2 share observed (✗: more than 5 points off the row) and calls/s`,
  '',
  '| policy | row | V2 expected | V2 sequential | V2 16 clients | calls/s sequential | calls/s 16 clients | failed |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    (m) =>
      `| ${m.policy} | ${m.row} | ${m.expected}% | ${m.sequential.v2.toFixed(1)}%${within(m.sequential.v2, m.expected)} | ` +
      `${m.concurrent.v2.toFixed(1)}%${within(m.concurrent.v2, m.expected)} | ${m.sequential.rps.toFixed(0)} | ` +
      `${m.concurrent.rps.toFixed(0)} | ${m.sequential.failed + m.concurrent.failed} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
