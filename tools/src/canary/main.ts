import { parseArgs } from 'node:util';
import { formatReport, judge, runCanaryCheck, type Expectation } from './canary-check.js';

const usage = `usage: npm run canary -- --url <base url> --requests N [--concurrency C] [--expect-v2 P --tolerance T] [--timeout MS] [--json]

Calls <base url>/usermgmt/notification-xray N times from C concurrent keep-alive clients (default 1), prints the
share of each notification version with a 95% confidence interval and its latency, and exits 1 when a call fails or
the V2 share is not within T points (default 5) of P percent.`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${usage}\n`);
  process.exit(2);
}

function integer(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) fail(`--${name} must be an integer from ${min} to ${max}`);
  return value;
}

function number(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) fail(`--${name} must be a number from ${min} to ${max}`);
  return value;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        url: { type: 'string' },
        requests: { type: 'string' },
        concurrency: { type: 'string' },
        'expect-v2': { type: 'string' },
        tolerance: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  if (parsed.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  if (!parsed.url) fail('--url is required');
  let url: URL;
  try {
    url = new URL(parsed.url);
  } catch {
    fail(`--url is not a URL: ${parsed.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('--url must be http:// or https://');
  const requests = integer('requests', parsed.requests, 1, 1_000_000) ?? fail('--requests is required');
  const concurrency = integer('concurrency', parsed.concurrency, 1, 1024) ?? 1;
  const timeoutMs = integer('timeout', parsed.timeout, 1, 600_000) ?? 10_000;
  const v2 = number('expect-v2', parsed['expect-v2'], 0, 100);
  const tolerance = number('tolerance', parsed.tolerance, 0, 100);
  if (tolerance !== undefined && v2 === undefined) fail('--tolerance needs --expect-v2');
  const expectation: Expectation | undefined = v2 === undefined ? undefined : { v2Percent: v2, tolerance: tolerance ?? 5 };

  const report = await runCanaryCheck({ url: url.href, requests, concurrency, timeoutMs });
  const verdict = judge(report, expectation);
  process.stdout.write(
    parsed.json ? `${JSON.stringify({ ...report, verdict }, null, 2)}\n` : `${formatReport(report, verdict, expectation)}\n`,
  );
  process.exitCode = verdict.ok ? 0 : 1;
}

await main();
