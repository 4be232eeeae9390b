import { Agent, request } from 'undici';
import { percentile, wilsonInterval } from './statistics.js';

export interface CanaryCheckOptions {
  /** Base URL of user management, e.g. http://127.0.0.1:8095 or https://canary.example.com */
  url: string;
  requests: number;
  concurrency: number;
  timeoutMs: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface VersionShare {
  version: string;
  count: number;
  /** Share of successful calls, 0..1. */
  share: number;
  /** 95% Wilson interval of the share. */
  interval: [number, number];
  latencyMs: LatencySummary;
}

export interface CanaryReport {
  url: string;
  requests: number;
  succeeded: number;
  failed: number;
  /** Failure reasons and how often each happened. */
  failures: Record<string, number>;
  versions: VersionShare[];
  durationMs: number;
  requestsPerSecond: number;
}

export const probePath = '/usermgmt/notification-xray';

/** The probe under `base`, keeping a path prefix an ingress may serve user management under (`https://host/team-a/`). */
export function probeUrl(base: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${probePath}`;
  url.search = '';
  url.hash = '';
  return url;
}

type CallResult = { ok: true; version: string; ms: number } | { ok: false; reason: string };

async function call(agent: Agent, target: URL, timeoutMs: number): Promise<CallResult> {
  const started = process.hrtime.bigint();
  try {
    const res = await request(target, { dispatcher: agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await res.body.text();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (res.statusCode !== 200) return { ok: false, reason: `HTTP ${res.statusCode}` };
    const version = (JSON.parse(text) as { appversion?: unknown }).appversion;
    if (typeof version !== 'string' || version === '') return { ok: false, reason: 'no appversion in the answer' };
    return { ok: true, version, ms };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, reason: e.code ?? e.name ?? 'error' };
  }
}

function summarise(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

/**
 * Calls `/usermgmt/notification-xray` `requests` times from `concurrency` clients, each keeping its own connection
 * alive (what a browser or another service does), and reports which notification version answered.
 */
export async function runCanaryCheck(options: CanaryCheckOptions): Promise<CanaryReport> {
  const target = probeUrl(options.url);
  // The timeout bounds connecting (TLS included) as well: a blackholed ingress would otherwise hold each call for
  // undici's own 10 s connect timeout, whatever --timeout says.
  const agent = new Agent({ connections: options.concurrency, keepAliveTimeout: 10_000, connect: { timeout: options.timeoutMs } });
  const latencies = new Map<string, number[]>();
  const failures: Record<string, number> = {};
  let next = 0;
  const started = process.hrtime.bigint();

  async function worker(): Promise<void> {
    while (next < options.requests) {
      next += 1;
      const result = await call(agent, target, options.timeoutMs);
      if (result.ok) {
        const list = latencies.get(result.version) ?? [];
        list.push(result.ms);
        latencies.set(result.version, list);
      } else {
        failures[result.reason] = (failures[result.reason] ?? 0) + 1;
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.requests) }, worker));
  } finally {
    await agent.close();
  }
  const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
  const succeeded = [...latencies.values()].reduce((sum, list) => sum + list.length, 0);
  const versions = [...latencies.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([version, list]) => ({
      version,
      count: list.length,
      share: list.length / succeeded,
      interval: wilsonInterval(list.length, succeeded),
      latencyMs: summarise(list),
    }));
  return {
    url: target.href,
    requests: options.requests,
    succeeded,
    failed: options.requests - succeeded,
    failures,
    versions,
    durationMs,
    requestsPerSecond: (options.requests / durationMs) * 1000,
  };
}

export interface Expectation {
  /** Expected V2 share in percent (0..100). */
  v2Percent: number;
  /** Allowed distance in percentage points. */
  tolerance: number;
}

export interface Verdict {
  ok: boolean;
  problems: string[];
  v2Percent: number;
}

/** The V2 share of successful calls, in percent. */
export function v2Percent(report: CanaryReport): number {
  const v2 = report.versions.find((v) => v.version === 'V2');
  return v2 ? v2.share * 100 : 0;
}

export function judge(report: CanaryReport, expectation?: Expectation): Verdict {
  const problems: string[] = [];
  const observed = v2Percent(report);
  if (report.failed > 0) problems.push(`${report.failed} of ${report.requests} calls failed`);
  if (report.succeeded === 0) problems.push('no call succeeded');
  if (expectation && report.succeeded > 0 && Math.abs(observed - expectation.v2Percent) > expectation.tolerance) {
    problems.push(
      `V2 share ${observed.toFixed(1)}% is not within ${expectation.tolerance} points of the expected ${expectation.v2Percent}%`,
    );
  }
  return { ok: problems.length === 0, problems, v2Percent: observed };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const ms = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(1));

export function formatReport(report: CanaryReport, verdict: Verdict, expectation?: Expectation): string {
  const lines = [
    `${report.requests} calls to ${report.url}: ${report.succeeded} succeeded, ${report.failed} failed, ` +
      `${report.requestsPerSecond.toFixed(0)} calls/s over ${(report.durationMs / 1000).toFixed(1)} s`,
    '',
    '| version | calls | share | 95% CI | p50 ms | p90 ms | p99 ms | max ms |',
    '|---|---:|---:|---|---:|---:|---:|---:|',
    ...report.versions.map(
      (v) =>
        `| ${v.version} | ${v.count} | ${pct(v.share)} | ${pct(v.interval[0])}–${pct(v.interval[1])} | ` +
        `${ms(v.latencyMs.p50)} | ${ms(v.latencyMs.p90)} | ${ms(v.latencyMs.p99)} | ${ms(v.latencyMs.max)} |`,
    ),
  ];
  const reasons = Object.entries(report.failures);
  if (reasons.length > 0) lines.push('', `failures: ${reasons.map(([r, n]) => `${r} ×${n}`).join(', ')}`);
  if (expectation) {
    lines.push('', `expected V2 ${expectation.v2Percent}% ± ${expectation.tolerance} points, observed ${verdict.v2Percent.toFixed(1)}%`);
  }
  lines.push('', verdict.ok ? 'OK' : `FAILED: ${verdict.problems.join('; ')}`);
  return lines.join('\n');
}
