import { parseArgs } from 'node:util';
import { numberFlag, optionsOrExit, UsageError } from '../cli-options.js';
import { formatReport, judge, runCanaryCheck, type Expectation } from './canary-check.js';

const usage = `usage: npm run canary -- --url <base url> --requests N [--concurrency C] [--expect-v2 P --tolerance T] [--timeout MS] [--json]

Calls <base url>/usermgmt/notification-xray N times from C concurrent keep-alive clients (default 1), prints the
share of each notification version with a 95% confidence interval and its latency, and exits 1 when a call fails or
the V2 share is not within T points (default 5) of P percent. The base URL may carry a path prefix
(https://host/prefix). --timeout bounds each call's connection (TLS included), its answer's headers and every pause
in its body (default 10000 ms).`;

interface CanaryOptions {
  url: string;
  requests: number;
  concurrency: number;
  timeoutMs: number;
  expectation: Expectation | undefined;
  json: boolean;
}

/** Parses the command line; `--help` gives undefined, anything the check cannot run with a UsageError. */
function parseCanaryOptions(args: string[]): CanaryOptions | undefined {
  let values;
  try {
    values = parseArgs({
      args,
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
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  if (!values.url) throw new UsageError('--url is required');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url is not a URL: ${values.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http:// or https://');
  if (values.requests === undefined) throw new UsageError('--requests is required');
  const expectV2 = values['expect-v2'];
  if (values.tolerance !== undefined && expectV2 === undefined) throw new UsageError('--tolerance needs --expect-v2');
  return {
    url: url.href,
    requests: numberFlag('requests', values.requests, 0, 1, 1_000_000),
    concurrency: numberFlag('concurrency', values.concurrency, 1, 1, 1024),
    timeoutMs: numberFlag('timeout', values.timeout, 10_000, 1, 600_000),
    expectation:
      expectV2 === undefined
        ? undefined
        : { v2Percent: numberFlag('expect-v2', expectV2, 0, 0, 100, false), tolerance: numberFlag('tolerance', values.tolerance, 5, 0, 100, false) },
    json: values.json === true,
  };
}

async function main(): Promise<void> {
  const options = optionsOrExit(parseCanaryOptions, usage);
  if (!options) return;
  const { url, requests, concurrency, timeoutMs, expectation } = options;
  const report = await runCanaryCheck({ url, requests, concurrency, timeoutMs });
  const verdict = judge(report, expectation);
  process.stdout.write(
    options.json ? `${JSON.stringify({ ...report, verdict }, null, 2)}\n` : `${formatReport(report, verdict, expectation)}\n`,
  );
  process.exitCode = verdict.ok ? 0 : 1;
}

await main();
