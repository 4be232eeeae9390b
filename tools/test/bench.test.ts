import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { testDatabaseSettings } from '@canary/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBenchOptions, UsageError } from '../src/bench/bench-options.js';
import { allocatorEnv, jemallocConf, jemallocPaths, runsOnJemalloc } from '../src/bench/allocator.js';
import type { BenchResults } from '../src/bench/bench-results.js';
import { categoryOf, summarizeProfiles } from '../src/bench/profile-summary.js';
import { LatencyRecorder, mergeHistograms, summarize } from '../src/bench/latency-histogram.js';
import { dropShare, formatSpread } from '../src/bench/report.js';
import { floorBatch } from '../src/bench/baseline/segment-datagrams.js';
import { defaultFlushMs, defaultMaxQueued } from '@canary/service-kit';
import { joinSlices } from '../src/bench/slices.js';
import type { ScenarioRun } from '../src/bench/bench-results.js';
import { ratios, spread } from '../src/bench/statistics.js';

const run = promisify(execFile);
const cli = new URL('../dist/bench/main.js', import.meta.url).pathname;

describe('bench statistics and options', () => {
  it('gives the median and range of the runs', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, runs: [4, 1, 3, 2] });
    expect(() => spread([])).toThrow('at least one value');
    expect(ratios([10, 30], [20, 10])).toEqual([0.5, 3]);
  });

  it('reads latency percentiles off a histogram of tenths of a millisecond, added up over slices', () => {
    const first = new LatencyRecorder();
    for (const ms of [1, 1.04, 2, 3, 4]) first.record(ms);
    const second = new LatencyRecorder();
    for (const ms of [5, 6, 7, 8, 100]) second.record(ms);
    expect(first.histogram()).toEqual([
      [10, 2],
      [20, 1],
      [30, 1],
      [40, 1],
    ]);
    const merged = mergeHistograms([first.histogram(), second.histogram()]);
    expect(summarize(merged)).toEqual({ p50: 4, p99: 100, mean: 13.7, max: 100 });
    expect(summarize(first.histogram())).toEqual({ p50: 2, p99: 4, mean: 2.2, max: 4 });
    expect(summarize([])).toEqual({ p50: 0, p99: 0, mean: 0, max: 0 });
  });

  it('joins the slices of a run: counts and times added, CPU weighted by time, latency over all responses', () => {
    const slice = (ok2xx: number, durationSeconds: number, cores: number, latencies: number[], datagrams?: number, dropped = 0): ScenarioRun => {
      const recorder = new LatencyRecorder();
      for (const ms of latencies) recorder.record(ms);
      const histogram = recorder.histogram();
      return {
        ok2xx,
        non2xx: 1,
        errors: 0,
        timeouts: 0,
        durationSeconds,
        latencyMs: summarize(histogram),
        latencyHistogram: histogram,
        cpuSeconds: 0.5,
        throughput: ok2xx / durationSeconds,
        cpu: { generator: 0.2, orchestrator: 0.1, byRole: { 'user-management': cores }, machine: 1, cores: 2 },
        ...(datagrams === undefined ? {} : { trace: { segmentsPerRequest: 0, sink: { datagrams, bytes: datagrams * 10, dropped, parsed: 1, malformed: 0, names: { A: 1 } } } }),
      };
    };
    const joined = joinSlices([slice(300, 1, 0.5, [1, 2, 3], 600, 8), slice(100, 3, 1.0, [10], 200)]);
    expect(joined).toMatchObject({
      ok2xx: 400,
      non2xx: 2,
      durationSeconds: 4,
      throughput: 100,
      cpuSeconds: 1,
      slices: 2,
      latencyMs: { p50: 2, p99: 10, max: 10 },
      cpu: { generator: 0.2, byRole: { 'user-management': 0.875 }, cores: 2 },
      // Sent per response: those the sink read and those its full socket dropped, (800 + 8) / 402.
      trace: { segmentsPerRequest: 2.01, sink: { datagrams: 800, bytes: 8000, dropped: 8, parsed: 2, names: { A: 2 } } },
    });
    expect(() => joinSlices([])).toThrow('at least one slice');
  });

  it('sends the floor\'s datagrams in the batches our services send theirs in', () => {
    expect(floorBatch).toEqual({ maxQueued: defaultMaxQueued, flushMs: defaultFlushMs });
  });

  it('gives the share of datagrams the sink dropped', () => {
    expect(dropShare({ datagrams: 970, dropped: 30 })).toBe('3%');
    expect(dropShare({ datagrams: 2, dropped: 1 })).toBe('33.3%');
    expect(dropShare({ datagrams: 0, dropped: 0 })).toBe('0%');
  });

  it('prints a spread as median (min–max), and one run as its value', () => {
    expect(formatSpread(spread([1200, 1000, 1500]))).toBe('1,200 (1,000–1,500)');
    expect(formatSpread(spread([25, 30, 27.5]), 0, '%')).toBe('28% (25–30%)');
    expect(formatSpread(spread([0.8]), 2)).toBe('0.80');
  });

  it('reads the flags, with their defaults', () => {
    expect(parseBenchOptions([])).toMatchObject({ runs: 3, durationSeconds: 10, warmupSeconds: 2, leadInSeconds: 1.5, connections: 50, quick: false, logLevel: 'warn' });
    expect(parseBenchOptions(['--quick'])).toMatchObject({ runs: 1, durationSeconds: 1, leadInSeconds: 0.3, quick: true, profile: false });
    expect(parseBenchOptions(['--lead-in', '0.3'])).toMatchObject({ leadInSeconds: 0.3, warmupSeconds: 2 });
    expect(() => parseBenchOptions(['--lead-in', '61'])).toThrow(new UsageError('--lead-in must be a number from 0 to 60'));
    expect(parseBenchOptions(['--profile'])).toMatchObject({ profile: true, profileRate: 500 });
    expect(parseBenchOptions(['--quick', '--runs', '2', '--duration', '2.5'])).toMatchObject({ runs: 2, durationSeconds: 2.5 });
    expect(parseBenchOptions(['--help'])).toBeUndefined();
    expect(() => parseBenchOptions(['--runs', '0'])).toThrow(new UsageError('--runs must be an integer from 1 to 20'));
    expect(() => parseBenchOptions(['--duration', 'ten'])).toThrow(new UsageError('--duration must be a number from 0.5 to 600'));
    expect(() => parseBenchOptions(['--fast'])).toThrow(UsageError);
    expect(parseBenchOptions([])?.nodeOptions).toBeUndefined();
    expect(parseBenchOptions([])?.allocator).toBe('jemalloc');
    expect(parseBenchOptions(['--allocator', 'glibc'])?.allocator).toBe('glibc');
    expect(() => parseBenchOptions(['--allocator', 'tcmalloc'])).toThrow(new UsageError('--allocator must be one of jemalloc, glibc'));
    expect(parseBenchOptions(['--node-options= --max-semi-space-size=4  --max-old-space-size=80 '])?.nodeOptions).toBe(
      '--max-semi-space-size=4  --max-old-space-size=80',
    );
    for (const bad of ['max-old-space-size=80', '--max-old-space-size=80 ; rm -rf /', '']) {
      expect(() => parseBenchOptions([`--node-options=${bad}`])).toThrow(new UsageError('--node-options must be Node options separated by spaces, each starting with --, e.g. "--max-old-space-size=80"'));
    }
  });

  it('sorts profiled functions into packages, our workspaces, parts of node and V8', () => {
    expect(categoryOf('file:///r/node_modules/aws-xray-sdk-core/dist/lib/segments/segment.js', 'Segment')).toBe('aws-xray-sdk-core');
    expect(categoryOf('file:///r/node_modules/a/node_modules/@fastify/ajv-compiler/index.js', 'x')).toBe('@fastify/ajv-compiler');
    expect(categoryOf('file:///r/packages/service-kit/dist/tracing/runtime.js', 'x')).toBe('@canary/service-kit');
    expect(categoryOf('file:///r/services/user-management/dist/app.js', 'x')).toBe('user-management (ours)');
    expect(categoryOf('file:///r/tools/dist/bench/baseline/front-server.js', 'x')).toBe('the baseline servers (ours)');
    expect(categoryOf('node:internal/async_hooks', 'emitInit')).toBe('node: async_hooks');
    expect(categoryOf('node:_http_server', 'x')).toBe('node: http');
    expect(categoryOf('', '(garbage collector)')).toBe('V8: garbage collector');
    expect(categoryOf('', 'writev')).toBe('native: writev');
    expect(categoryOf('', 'anonymous1')).toBe('generated code (fast-json-stringify, ajv)');
    expect(categoryOf('', '')).toBe('native: (unnamed)');
    expect(categoryOf('', '(idle)')).toBeUndefined();
  });

  it('adds up busy time by category, leaving out idle time and the first delta', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-profile-'));
    try {
      const file = path.join(dir, 'user-management-1.cpuprofile');
      const frame = (functionName: string, url: string) => ({ functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 });
      await writeFile(
        file,
        JSON.stringify({
          nodes: [
            { id: 1, callFrame: frame('(root)', '') },
            { id: 2, callFrame: frame('(idle)', '') },
            { id: 3, callFrame: frame('send', 'file:///r/node_modules/aws-xray-sdk-core/dist/lib/segment_emitter.js') },
            { id: 4, callFrame: frame('handler', 'file:///r/services/user-management/dist/app.js') },
          ],
          startTime: 0,
          endTime: 1000,
          samples: [4, 3, 2, 4, 3, 3],
          timeDeltas: [500, 100, 900, 50, 100, 100],
        }),
      );
      expect(summarizeProfiles([file])).toEqual({
        busyMicros: 350,
        categories: [
          { category: 'aws-xray-sdk-core', micros: 300 },
          { category: 'user-management (ours)', micros: 50 },
        ],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad flag with exit code 2 and the usage', async () => {
    const failure = await run(process.execPath, [cli, '--runs', 'x']).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain('--runs must be an integer from 1 to 20');
    expect(failure?.stderr).toContain('usage: npm run bench');

    const policy = await run(process.execPath, [cli, '--policy', 'nope']).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(policy?.code).toBe(2);
    expect(policy?.stderr).toContain("--policy nope: user management's NOTIFICATION_CONNECTION_POLICY offers instance-balanced");
  });
});

describe('the allocator of the bench\'s servers', () => {
  it('gives glibc\'s malloc no environment, and jemalloc the first library found, with the images\' settings', () => {
    expect(allocatorEnv('glibc', () => true)).toEqual({});
    expect(allocatorEnv('jemalloc', (p) => p === '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2')).toEqual({
      LD_PRELOAD: '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
      MALLOC_CONF: 'background_thread:true,max_background_threads:1,dirty_decay_ms:100,muzzy_decay_ms:0',
    });
    expect(() => allocatorEnv('jemalloc', () => false)).toThrow(
      new UsageError('jemalloc, which the images run the services on, is not installed here: apt-get install libjemalloc2, or measure on glibc\'s malloc with --allocator glibc'),
    );
  });

  it('measures what the images run: the Dockerfile preloads the same library path with the same MALLOC_CONF', () => {
    const dockerfile = readFileSync(new URL('../../docker/Dockerfile', import.meta.url), 'utf8');
    expect(dockerfile).toContain(`\nENV LD_PRELOAD=${jemallocPaths[0]} \\\n    MALLOC_CONF=${jemallocConf}\n`);
  });

  it('tells a process on jemalloc from one on glibc by what it has mapped', async () => {
    const start = async (env: Record<string, string>): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['-e', "console.log('up'); setInterval(() => {}, 1000)"], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
      await once(child.stdout!, 'data');
      return child;
    };
    const onJemalloc = await start(allocatorEnv('jemalloc'));
    const onGlibc = await start(allocatorEnv('glibc'));
    try {
      expect(runsOnJemalloc(onJemalloc.pid!)).toBe(true);
      expect(runsOnJemalloc(onGlibc.pid!)).toBe(false);
    } finally {
      onJemalloc.kill();
      onGlibc.kill();
    }
  });
});

describe('npm run bench -- --quick', () => {
  let outDir: string;
  let stdout: string;
  let stderr: string;
  let results: BenchResults;
  let resultsPath: string;

  beforeAll(async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'bench-test-'));
    ({ stdout, stderr } = await run(process.execPath, [cli, '--quick', '--node-options=--max-old-space-size=300', '--out', outDir], { maxBuffer: 16 * 1024 * 1024, timeout: 240_000 }));
    const last = stdout.trimEnd().split('\n').at(-1) ?? '';
    resultsPath = last.replace(/^results: /, '');
    results = JSON.parse(readFileSync(resultsPath, 'utf8')) as BenchResults;
  }, 300_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it('ends with the path of the JSON file it wrote', () => {
    const last = stdout.trimEnd().split('\n').at(-1);
    expect(last).toMatch(/^results: .+\.json$/);
    expect(path.dirname(resultsPath)).toBe(outDir);
    expect(existsSync(resultsPath)).toBe(true);
  });

  it('prints the markdown tables, one row per scenario, route and service', () => {
    expect(stdout).toContain('| Scenario | Throughput (req/s) | p50 (ms) | p99 (ms) | Failed | CPU cores: load generator / servers / other processes on the machine |');
    expect(stdout).toContain('| Route | Ours / baseline, throughput (goal ≥ 0.7) |');
    expect(stdout).toContain('| Route | The same from CPU time per response: ours / baseline |');
    expect(stdout).toContain('| Service | Start-up to first ready (ms, goal < 1000) |');
    expect(stdout).toContain('| Load generator check | |');
    for (const label of [
      '| load generator ceiling — one trivial bare-http server |',
      '| /usermgmt/notification-xray — baseline (bare http) |',
      '| /usermgmt/users — baseline (bare http) |',
      '| /usermgmt/notification-xray — baseline (bare http) + one datagram per hop, the least tracing every request costs |',
      '| /usermgmt/users — baseline (bare http) + one datagram per hop, the least tracing every request costs |',
      '| /usermgmt/notification-xray — ours, tracing off |',
      '| /usermgmt/users — ours, tracing on, every request sampled |',
      '| /usermgmt/users — ours, tracing on, none sampled |',
      '| /usermgmt/notification-xray — ours, tracing on, default sampling (1/s + 5%) |',
      '| notification |',
      '| user-management |',
      '| baseline front (bare http, for reference) | |',
      '| baseline back (bare http, for reference) | |',
    ]) {
      expect(stdout).toContain(label);
    }
    expect(stderr).toContain('run 1 of 1');
  });

  it('writes every figure to the JSON file', () => {
    expect(results.version).toBe(1);
    expect(results.settings).toMatchObject({ runs: 1, quick: true, v1: 2, v2: 2, users: 100, nodeOptions: '--max-old-space-size=300' });
    expect(stdout).toContain('our services with NODE_OPTIONS="--max-old-space-size=300"');
    expect(results.settings.allocator).toBe('jemalloc');
    expect(stdout).toContain(', every server on jemalloc,');
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.version);
    expect(results.scenarios.map((s) => s.id).sort()).toEqual(
      [
        'trivial/ceiling',
        'xray/baseline/none',
        'users/baseline/none',
        'xray/floor/none',
        'users/floor/none',
        'xray/ours/off',
        'users/ours/off',
        'xray/ours/on',
        'users/ours/on',
        'xray/ours/unsampled',
        'users/ours/unsampled',
        'xray/ours/default',
        'users/ours/default',
      ].sort(),
    );
    for (const scenario of results.scenarios) {
      expect(scenario.runs).toHaveLength(1);
      const [only] = scenario.runs;
      expect(only!.ok2xx).toBeGreaterThan(0);
      expect(scenario.throughput.runs).toEqual([only!.throughput]);
      expect(Number.isFinite(scenario.p99Ms.median)).toBe(true);
      expect(only!.cpu.generator).toBeGreaterThan(0);
      expect(Object.keys(only!.cpu.byRole)).toContain('xray-sink');
    }
    expect(results.comparisons.map((c) => c.route)).toEqual(['xray', 'users']);
    for (const c of results.comparisons) {
      for (const figure of [c.oursOverBaseline, c.tracingCost, c.defaultSamplingCost, c.unsampledCost, c.tracedOverBaseline, c.cpuOursOverBaseline, c.cpuTracingCost, c.cpuDefaultSamplingCost, c.cpuUnsampledCost, c.floorCost, c.cpuFloorCost, c.cpuFloorOnOurs]) {
        expect(figure.runs).toHaveLength(1);
        expect(Number.isFinite(figure.median)).toBe(true);
      }
    }
    expect(results.services.map((s) => s.service)).toEqual(['notification', 'user-management']);
    for (const s of results.services) {
      expect(s.startupMs.runs).toHaveLength(1);
      expect(s.startupMs.median).toBeGreaterThan(0);
      // The process timed at start-up, left idle through the run: one sample per run.
      expect(s.rssIdleAloneMB.runs).toHaveLength(1);
      expect(s.rssIdleAloneMB.median).toBeGreaterThan(0);
    }
    // The baseline's processes are sampled as ours are: idle, as the load stops and a while later, per run (ours: per stack).
    expect(results.baselineMemory.map((b) => b.process)).toEqual(['front', 'back']);
    expect(results.settings.settleSeconds).toBe(2);
    expect(results.settings.leadInSeconds).toBe(0.3);
    expect(results.baselineMemory.flatMap((b) => [b.rssIdleMB.runs.length, b.rssAfterLoadMB.runs.length, b.rssSettledMB.runs.length])).toEqual([1, 1, 1, 1, 1, 1]);
    // Ours: one value per stack (four in the one run), nothing for the baseline's slot.
    expect(results.services.flatMap((s) => [s.rssIdleMB.runs.length, s.rssAfterLoadMB.runs.length, s.rssSettledMB.runs.length])).toEqual([4, 4, 4, 4, 4, 4]);
    for (const m of [...results.services, ...results.baselineMemory]) {
      expect(m.rssIdleMB.median).toBeGreaterThan(0);
      expect(m.rssAfterLoadMB.median).toBeGreaterThan(0);
      expect(m.rssSettledMB.median).toBeGreaterThan(0);
    }
    expect(results.generator.ceiling.median).toBeGreaterThan(0);
  });

  it('loads real stacks: no failed call, the same JSON from ours and the baseline, no warning logged', () => {
    for (const scenario of results.scenarios) expect({ id: scenario.id, failed: scenario.failed }).toEqual({ id: scenario.id, failed: 0 });
    expect(results.sameBodies).toEqual({ xray: true, users: true });
    expect(results.stackWarnings.map((w) => w.count)).toEqual([0, 0, 0, 0]);
  });

  it('traces every request when sampling all, a few with the default rule, none when sampling none, through the sink in its own process', () => {
    const perRequest = (id: string): number | undefined => results.scenarios.find((s) => s.id === id)?.runs[0]?.trace?.segmentsPerRequest;
    // Two hops traced: a user management segment and a notification segment per call; /users has one (SQL is inside it).
    expect(perRequest('xray/ours/on')).toBeGreaterThanOrEqual(1.8);
    expect(perRequest('users/ours/on')).toBeGreaterThanOrEqual(0.9);
    expect(perRequest('xray/ours/unsampled')).toBeLessThan(0.05);
    // The default rule: the first request of each second and 5% of the rest, two segments each.
    expect(perRequest('xray/ours/default')).toBeGreaterThan(0.04);
    expect(perRequest('xray/ours/default')).toBeLessThan(0.4);
    expect(perRequest('xray/ours/off')).toBeUndefined();
    const sink = results.scenarios.find((s) => s.id === 'xray/ours/on')?.runs[0]?.trace?.sink;
    expect(sink?.malformed).toBe(0);
    const names = Object.keys(sink?.names ?? {});
    expect(names).toContain('User-Management-Microservice');
    expect(names.some((name) => /^V[12]-Notification-Microservice$/.test(name))).toBe(true);
  });

  it('sends one datagram per request and hop from the baseline in the floor scenarios, the size of our segments', () => {
    const trace = (id: string) => results.scenarios.find((s) => s.id === id)?.runs[0]?.trace;
    // Counted from the sink's reset to 100 ms after the load: a few percent either way at the slice's edges.
    expect(trace('xray/floor/none')?.segmentsPerRequest).toBeGreaterThanOrEqual(1.8);
    expect(trace('xray/floor/none')?.segmentsPerRequest).toBeLessThanOrEqual(2.2);
    expect(trace('users/floor/none')?.segmentsPerRequest).toBeGreaterThanOrEqual(0.9);
    expect(trace('users/floor/none')?.segmentsPerRequest).toBeLessThanOrEqual(1.1);
    expect(results.scenarios.find((s) => s.id === 'xray/baseline/none')?.runs[0]?.trace).toBeUndefined();
    const floor = trace('xray/floor/none')?.sink;
    expect(floor?.malformed).toBe(0);
    // Its constant documents' names (other stacks, up at once, may add theirs: the sink is shared).
    expect(Object.keys(floor?.names ?? {})).toEqual(expect.arrayContaining(['User-Management-Microservice', 'V1-Notification-Microservice']));
    // Within a fifth of the size of ours, on both routes, so the kernel copies as much.
    for (const route of ['xray', 'users']) {
      const size = (id: string): number => (trace(id)?.sink.bytes ?? 0) / Math.max(1, trace(id)?.sink.datagrams ?? 0);
      expect(size(`${route}/floor/none`) / size(`${route}/ours/on`)).toBeGreaterThan(0.8);
      expect(size(`${route}/floor/none`) / size(`${route}/ours/on`)).toBeLessThan(1.2);
    }
    expect(stdout).toContain("the floor's datagrams on ours (a tracer costing nothing itself) |");
  });

  it('drops its database', async () => {
    const connection = await mysql.createConnection({ ...testDatabaseSettings(), connectTimeout: 5000 });
    try {
      const [rows] = await connection.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', [`canary\\_bench\\_%`]);
      const names = rows.map((row) => String(Object.values(row)[0]));
      const created = /database (canary_bench_\d+_[0-9a-f]+)/.exec(stderr)?.[1];
      expect(created).toBeDefined();
      expect(names).not.toContain(created);
    } finally {
      await connection.end();
    }
  });
});
