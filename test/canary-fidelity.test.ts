import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { runCanaryCheck, v2Percent } from '../tools/src/canary/canary-check.js';
import { courseRows } from '../tools/src/canary/course-rows.js';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../tools/src/local-stack/index.js';

/** The target: the observed V2 share within 5 points of the row's, on every run. */
const tolerance = 5;

describe('the split users get is the split they set (local stack, instance-balanced connections)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('fidelity');
  });

  afterAll(async () => {
    await db?.drop();
  });

  function stackOptions(v1: number, v2: number): LocalStackOptions {
    return {
      v1,
      v2,
      usermgmtPort: 0,
      notificationPort: 0,
      env: { ...process.env, ...db.env, LOG_LEVEL: 'warn', AWS_XRAY_SDK_ENABLED: 'false' },
      write: () => undefined,
    };
  }

  for (const row of courseRows) {
    it(`row ${row.v1}/${row.v2}: ${row.v2Percent}% to V2 over 1000 sequential calls and 1000 from 16 clients`, async () => {
      const stack = await startLocalStack(stackOptions(row.v1, row.v2));
      try {
        const url = `http://${stack.host}:${stack.usermgmtPort}`;
        for (const concurrency of [1, 16]) {
          const report = await runCanaryCheck({ url, requests: 1000, concurrency, timeoutMs: 10_000 });
          expect(report.failed, JSON.stringify(report.failures)).toBe(0);
          const observed = v2Percent(report);
          expect(Math.abs(observed - row.v2Percent), `V2 share ${observed}% with ${concurrency} client(s)`).toBeLessThanOrEqual(tolerance);
        }
      } finally {
        await stack.close();
      }
    });
  }

  it('moving from 2/2 to 1/3 under a steady stream of calls loses none', async () => {
    const stack: LocalStack = await startLocalStack(stackOptions(2, 2));
    try {
      const target = `http://${stack.host}:${stack.usermgmtPort}/usermgmt/notification-xray`;
      const failures: string[] = [];
      const versions: string[] = [];
      let running = true;
      const clients = Array.from({ length: 4 }, async () => {
        while (running) {
          try {
            const res = await request(target);
            const text = await res.body.text();
            if (res.statusCode === 200) versions.push((JSON.parse(text) as { appversion: string }).appversion);
            else failures.push(`${res.statusCode} ${text}`);
          } catch (err) {
            failures.push(String(err));
          }
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const beforeShift = versions.length;
      const oldV1 = stack.replicas().filter((r) => r.version === 'V1').map((r) => r.pid);
      await stack.scale({ v1: 1, v2: 3 });
      const afterShift = versions.length;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      running = false;
      await Promise.all(clients);

      expect(failures).toEqual([]);
      expect(beforeShift).toBeGreaterThan(50);
      expect(afterShift).toBeGreaterThan(beforeShift);
      const now = stack.replicas();
      expect(now.filter((r) => r.version === 'V1')).toHaveLength(1);
      expect(now.filter((r) => r.version === 'V2')).toHaveLength(3);
      // One of the two V1 replicas stopped, and calls kept being answered meanwhile.
      expect(oldV1.filter((pid) => now.some((r) => r.pid === pid))).toHaveLength(1);

      const settled = await runCanaryCheck({ url: `http://${stack.host}:${stack.usermgmtPort}`, requests: 1000, concurrency: 4, timeoutMs: 10_000 });
      expect(settled.failed).toBe(0);
      expect(Math.abs(v2Percent(settled) - 75)).toBeLessThanOrEqual(tolerance);
    } finally {
      await stack.close();
    }
  });
});
