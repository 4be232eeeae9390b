import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { request } from 'undici';
import { startBaselineStack } from './baseline/baseline-stack.js';
import type { BenchOptions } from './bench-options.js';
import { createBenchDatabase } from './bench-database.js';
import {
  routePaths,
  type BaselineMemory,
  type BenchResults,
  type Comparison,
  type CpuProfileFigures,
  type RouteName,
  type ScenarioResult,
  type ScenarioRun,
  type ServiceFigures,
  type SystemName,
  tracingLabel,
  type TracingMode,
} from './bench-results.js';
import { entryPath, forkEntry, stopChild, waitForMessage } from './child-processes.js';
import { runLoad, type WatchedProcess } from './load-generator.js';
import { choosePolicy } from './policy-support.js';
import { systemCpuMsPerResponse } from './cpu-accounting.js';
import { startOurStack, type OurStack } from './our-stack.js';
import { allocatorEnv, runsOnJemalloc } from './allocator.js';
import { joinSlices, segmentsPerResponse } from './slices.js';
import { listeningPid, machineInfo, residentBytes, waitForQuietMachine } from './proc-stats.js';
import { summarizeProfiles } from './profile-summary.js';
import { measureStartup, repositoryRoot, startAlone, type ServiceName, type StandaloneService } from './service-startup.js';
import { ratios, spread } from './statistics.js';
import { startXraySink, type XraySink } from './xray-sink-process.js';
import { dropShare } from './report.js';

export const goals = { oursOverBaseline: 0.7, tracingCost: 0.1, startupMs: 1000, rssMB: 100 } as const;

const v1 = 2;
const v2 = 2;
const routes: RouteName[] = ['xray', 'users'];
type Stage = 'baseline' | 'floor' | TracingMode;
const stages: Stage[] = ['baseline', 'floor', 'off', 'on', 'default', 'unsampled'];
/** The default-sampling runs tell little a profile of `on` and `unsampled` does not, the floor little the baseline's does not. */
const profiledStages = stages.filter((stage): stage is 'baseline' | TracingMode => stage !== 'default' && stage !== 'floor');

interface Scenario {
  id: string;
  label: string;
  system: ScenarioResult['system'];
  route: ScenarioResult['route'];
  tracing: ScenarioResult['tracing'];
}


const systemLabel: Record<Exclude<SystemName, 'ours'>, string> = {
  baseline: 'baseline (bare http)',
  floor: 'baseline (bare http) + one datagram per hop, the least tracing every request costs',
};

function scenarioOf(system: SystemName, route: RouteName, tracing: TracingMode | 'none'): Scenario {
  const who = system === 'ours' ? `ours, ${tracingLabel[tracing as TracingMode]}` : systemLabel[system];
  return { id: `${route}/${system}/${tracing}`, label: `${routePaths[route]} — ${who}`, system, route, tracing };
}

const ceilingScenario: Scenario = {
  id: 'trivial/ceiling',
  label: 'load generator ceiling — one trivial bare-http server',
  system: 'trivial',
  route: 'trivial',
  tracing: 'none',
};

const mb = (bytes: number): number => Math.round((bytes / 1_048_576) * 10) / 10;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** X-Ray local sampling rules (version 2): `fixedTarget` requests a second, then `rate` of the others. */
function samplingRules(fixedTarget: number, rate: number): string {
  return JSON.stringify({ version: 2, default: { fixed_target: fixedTarget, rate }, rules: [] });
}

async function fetchJson(url: string): Promise<unknown> {
  const response = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${response.statusCode}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}

/**
 * What a stack answers on each route: the distinct xray bodies over several calls with the version blanked out (which
 * replica answers depends on the connection policy, not on the server), and the user list.
 */
async function sampleBodies(baseUrl: string): Promise<Record<RouteName, unknown>> {
  const xray = new Set<string>();
  for (let i = 0; i < 8; i += 1) {
    const body = (await fetchJson(`${baseUrl}${routePaths.xray}`)) as Record<string, unknown>;
    xray.add(JSON.stringify({ ...body, appversion: /^V[12]$/.test(String(body.appversion)) ? 'V1 or V2' : body.appversion }));
  }
  return { xray: [...xray].sort(), users: await fetchJson(`${baseUrl}${routePaths.users}`) };
}

export type Log = (line: string) => void;

/** A system under test, up for one run: the baseline, or our stack with one tracing mode. */
interface RunningSystem {
  url: string;
  processes: WatchedProcess[];
  ours?: OurStack;
  close(): Promise<void>;
}

/** `items` starting at position `by` (modulo its length), wrapping around. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const start = by % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

/** What is running or exists now and must go if the bench is interrupted (stacks, the sink, the database). */
const openResources = new Set<() => Promise<unknown>>();

async function holding<T>(close: () => Promise<unknown>, work: () => Promise<T>): Promise<T> {
  openResources.add(close);
  try {
    return await work();
  } finally {
    openResources.delete(close);
    await close();
  }
}

/** Stops whatever a bench interrupted by a signal left running, and drops its database. */
export async function releaseAfterInterrupt(): Promise<void> {
  await Promise.allSettled([...openResources].map((close) => close()));
}

/** Runs every measurement of the benchmark; `log` gets one line per step, for the terminal. */
export async function runBench(options: BenchOptions, log: Log): Promise<BenchResults> {
  const startedAt = new Date();
  const machine = machineInfo();
  const { policy, env: policyEnv } = await choosePolicy(options.policy);
  // Every server, ours and the baseline's, on the same malloc; the load generator and the sink keep glibc's.
  const mallocEnv = allocatorEnv(options.allocator);
  // LD_PRELOAD that cannot load is skipped with a warning only, so each server's mappings are checked; a system that
  // fails the check is stopped before the error goes up.
  const checkAllocator = async <T extends { processes: readonly { role: string; pid: number }[]; close(): Promise<void> }>(system: T): Promise<T> => {
    const without = options.allocator === 'jemalloc' ? system.processes.filter((p) => !runsOnJemalloc(p.pid)) : [];
    if (without.length === 0) return system;
    await system.close();
    throw new Error(`not running on jemalloc despite LD_PRELOAD: ${without.map((p) => `${p.role} (pid ${p.pid})`).join(', ')}`);
  };
  const umPackage = JSON.parse(await readFile(path.join(repositoryRoot, 'services/user-management/package.json'), 'utf8')) as { version: string };
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'canary-bench-'));
  const rulesFile = {
    on: path.join(scratch, 'sample-all.json'),
    default: path.join(scratch, 'sample-default.json'),
    unsampled: path.join(scratch, 'sample-none.json'),
  };
  await writeFile(rulesFile.on, samplingRules(0, 1));
  // The SDK's own default rule, written out: without a file it would first ask the daemon, which the sink is not.
  await writeFile(rulesFile.default, samplingRules(1, 0.05));
  await writeFile(rulesFile.unsampled, samplingRules(0, 0));

  const runsOf = new Map<string, { scenario: Scenario; runs: ScenarioRun[] }>();
  const record = (scenario: Scenario, run: ScenarioRun): void => {
    const entry = runsOf.get(scenario.id) ?? { scenario, runs: [] };
    entry.runs.push(run);
    runsOf.set(scenario.id, entry);
  };
  const startup: Record<ServiceName, number[]> = { notification: [], 'user-management': [] };
  const startupSyns: Record<ServiceName, number[]> = { notification: [], 'user-management': [] };
  // Each run's standalone services (those timed at start-up) are left idle until the run ends, then sampled.
  const idleAlone: Record<ServiceName, number[]> = { notification: [], 'user-management': [] };
  type RssSamples = { idle: number[]; after: number[]; settled: number[] };
  // Keyed by process role: ours, and the baseline's, sampled the same way as a reference for what Node itself holds.
  // Each list is indexed by stack (run by run, stages in their fixed order), so a stack's three samples line up.
  const rss: Record<ServiceName, RssSamples> = {
    notification: { idle: [], after: [], settled: [] },
    'user-management': { idle: [], after: [], settled: [] },
  };
  const baselineRss: Record<'front' | 'notification', RssSamples> = {
    front: { idle: [], after: [], settled: [] },
    notification: { idle: [], after: [], settled: [] },
  };
  const stackWarnings: BenchResults['stackWarnings'] = [];
  const bodies: Partial<Record<'baseline' | 'ours', Record<RouteName, unknown>>> = {};

  log(`creating a database and starting the X-Ray sink (machine: ${machine.cores} cores, load ${machine.loadAverageStart.join(' ')})`);
  const database = await createBenchDatabase();
  let sink: XraySink | undefined;
  const release = async (): Promise<void> => {
    await sink?.close();
    await database.drop().catch((err: Error) => log(`could not drop database ${database.name}: ${err.message}`));
    await rm(scratch, { recursive: true, force: true });
  };
  openResources.add(release);
  try {
    sink = await startXraySink();
    const activeSink = sink;
    // Our services' NODE_OPTIONS replace any the bench itself was started with: the flags measured are the ones named.
    const nodeEnv: Record<string, string> = { ...mallocEnv, ...(options.nodeOptions ? { NODE_OPTIONS: options.nodeOptions } : {}) };
    const tracingEnv = (mode: TracingMode): Record<string, string> => ({
      ...nodeEnv,
      ...(mode === 'off'
        ? { AWS_XRAY_SDK_ENABLED: 'false' }
        : { AWS_XRAY_SDK_ENABLED: 'true', AWS_XRAY_DAEMON_ADDRESS: activeSink.address, XRAY_SAMPLING_RULES_FILE: rulesFile[mode] }),
    });
    const standaloneEnv: Record<ServiceName, Record<string, string>> = {
      notification: { ...tracingEnv('on'), LOG_LEVEL: options.logLevel, APP_VERSION: 'V1', AWS_MAIL_SERVER_HOST: '127.0.0.1' },
      'user-management': {
        ...tracingEnv('on'),
        ...database.env,
        ...policyEnv,
        LOG_LEVEL: options.logLevel,
        NOTIFICATION_SERVICE_HOST: '127.0.0.1',
        NOTIFICATION_SERVICE_PORT: '9',
      },
    };

    // Unmeasured first starts: user management migrates the new database (so the users can be seeded), and both
    // services' files get into the page cache, so every measured start is a warm one.
    await measureStartup('user-management', standaloneEnv['user-management'], 60_000);
    await measureStartup('notification', standaloneEnv.notification, 60_000);
    await database.seedUsers(options.users);
    log(`database ${database.name}: migrated, ${options.users} users seeded`);

    const job = (url: string) => ({
      url,
      connections: options.connections,
      warmupSeconds: options.warmupSeconds,
      durationSeconds: options.durationSeconds,
      timeoutSeconds: 10,
    });
    // The database server's CPU time is counted too when it runs on this machine (its share of /users is large).
    const databasePid = /^(127\.0\.0\.1|localhost|::1)$/.test(database.env.DB_HOSTNAME ?? '') ? listeningPid(Number(database.env.DB_PORT)) : undefined;
    const others: WatchedProcess[] = [{ role: 'xray-sink', pid: activeSink.pid }, ...(databasePid ? [{ role: 'database', pid: databasePid }] : [])];
    const withSink = (processes: WatchedProcess[]): WatchedProcess[] => [...processes, ...others];

    /** The largest RSS among each role's processes (a service's replicas), into that role's samples, at the stack's slot. */
    const sampleRss = (system: RunningSystem, stage: Stage, run: number, when: keyof RssSamples): void => {
      // The floor is the baseline plus a socket: one bare-http reference for memory is enough.
      if (stage === 'floor') return;
      const into: Record<string, RssSamples> = system.ours ? rss : baselineRss;
      const slot = run * stages.length + stages.indexOf(stage);
      for (const [role, samples] of Object.entries(into)) {
        const pids = system.processes.filter((p) => p.role === role).map((p) => p.pid);
        samples[when][slot] = Math.max(...pids.map((pid) => residentBytes(pid)));
      }
    };

    const startSystem = async (stage: Stage, run: number): Promise<RunningSystem> => {
      if (stage === 'baseline' || stage === 'floor') {
        const daemonAddress = stage === 'floor' ? activeSink.address : undefined;
        const baseline = await checkAllocator(
          await startBaselineStack({ v1, v2, policyEnv, databaseEnv: database.env, appVersion: umPackage.version, daemonAddress, env: mallocEnv }),
        );
        return { url: baseline.url, processes: baseline.processes, close: baseline.close };
      }
      const stack = await checkAllocator(
        await startOurStack({
          v1,
          v2,
          databaseEnv: database.env,
          serviceEnv: { ...tracingEnv(stage), LOG_LEVEL: options.logLevel },
          usermgmtEnv: policyEnv,
        }),
      );
      return {
        url: stack.url,
        processes: stack.processes,
        ours: stack,
        close: async () => {
          await stack.close();
          stackWarnings.push({ tracing: stage, run, ...stack.warnings });
          if (stack.warnings.count > 0) log(`  our stack (${tracingLabel[stage]}) logged ${stack.warnings.count} warning lines, first: ${stack.warnings.first[0]}`);
        },
      };
    };

    /** One slice of load on one scenario; with tracing on, the datagrams the sink got meanwhile. */
    const measure = async (baseUrl: string, path_: string, processes: WatchedProcess[], traced: boolean, durationSeconds: number, warmupSeconds: number): Promise<ScenarioRun> => {
      const run: ScenarioRun = await runLoad({ ...job(`${baseUrl}${path_}`), durationSeconds, warmupSeconds }, withSink(processes), () => {
        if (traced) activeSink.report(true).catch(() => undefined);
      });
      if (traced) {
        // The last responses' segments are a few datagrams behind them.
        await sleep(100);
        const report = await activeSink.report(true);
        run.trace = { segmentsPerRequest: segmentsPerResponse(report, run.ok2xx + run.non2xx), sink: report };
      }
      return run;
    };

    // Each scenario's measured time is cut into slices of about 2 s, run in turn with every other scenario's: this
    // machine's speed drifts by a third within minutes, and interleaving lets the drift reach every system alike.
    const sliceCount = Math.max(1, Math.round(options.durationSeconds / 2));
    const sliceSeconds = options.durationSeconds / sliceCount;
    // How long after its last slice a system's memory is sampled again: whether V8 gives memory grown under load back
    // by itself once the process idles. Its memory reducer did so 28 s after a load on Node 20; on Node 26 it judges
    // the allocation rate high even in an idle process, and only its watchdog, 100 s after the last collection, runs it.
    const settleSeconds = options.quick ? 2 : 120;

    for (let r = 0; r < options.runs; r += 1) {
      log(`run ${r + 1} of ${options.runs}`);
      // Every system of this run is up at once (idle ones take no CPU), so that their measurements can interleave; the
      // services timed at start-up stay up too, idle, until the run ends.
      const systems = new Map<Stage, RunningSystem>();
      const alone = new Map<ServiceName, StandaloneService>();
      const closeRun = async (): Promise<void> => {
        await Promise.allSettled([...[...systems.values()].map((system) => system.close()), ...[...alone.values()].map((service) => service.stop())]);
        systems.clear();
        alone.clear();
      };
      await holding(closeRun, async () => {
        for (const service of ['notification', 'user-management'] as const) {
          const wait = await waitForQuietMachine();
          const started = await startAlone(service, standaloneEnv[service]);
          alone.set(service, started);
          await checkAllocator({ processes: [{ role: service, pid: started.pid }], close: started.stop });
          const { figures } = started;
          startup[service].push(figures.readyMs);
          if (figures.synRetransmits !== undefined) startupSyns[service].push(figures.synRetransmits);
          log(
            `  ${service}: ready ${figures.readyMs} ms after process start (RSS ${mb(figures.rssBytes)} MB); ` +
              `${wait.quiet ? 'started' : 'machine still busy, started anyway'} after ${wait.waitedMs} ms of waiting, ` +
              `cores ${Math.round(wait.busyShare * 100)}% busy` +
              (figures.synRetransmits ? `; the machine resent ${figures.synRetransmits} SYN(s) meanwhile, 1 s each if it was a poll's` : ''),
          );
        }

        const trivial = forkEntry(entryPath('baseline/back-server'), { ...process.env, BASELINE_VERSION: 'V1' });
        await holding(
          () => stopChild(trivial),
          async () => {
            const port = await waitForMessage(trivial, (m) => (m as { port?: number }).port, 10_000, 'trivial server');
            const run = await measure(`http://127.0.0.1:${port}`, '/notification/xray', [{ role: 'server', pid: trivial.pid as number }], false, options.durationSeconds, options.warmupSeconds);
            record(ceilingScenario, run);
            log(`  ${ceilingScenario.label}: ${run.throughput} req/s`);
          },
        );

        // Stacks started alike still differ by about a tenth, so no system starts in the same place every run.
        for (const stage of rotate(stages, 2 * r)) {
          const system = await startSystem(stage, r + 1);
          systems.set(stage, system);
          await sleep(500);
          sampleRss(system, stage, r, 'idle');
        }
        bodies.baseline ??= await sampleBodies(systems.get('baseline')!.url);
        bodies.ours ??= await sampleBodies(systems.get('off')!.url);

        log(`  warming up every system for ${options.warmupSeconds} s per route`);
        for (const stage of stages) {
          const system = systems.get(stage)!;
          for (const route of routes) await measure(system.url, routePaths[route], system.processes, false, Math.min(0.5, options.durationSeconds), options.warmupSeconds);
        }

        const slices = new Map<string, { scenario: Scenario; runs: ScenarioRun[] }>();
        for (let k = 0; k < sliceCount; k += 1) {
          // Each round starts with another system and route, so none is always measured first or last.
          const order = rotate(stages, k + r);
          for (const [i, stage] of order.entries()) {
            const system = systems.get(stage)!;
            for (const route of rotate(routes, k + i)) {
              const scenario = stage === 'baseline' || stage === 'floor' ? scenarioOf(stage, route, 'none') : scenarioOf('ours', route, stage);
              // Each slice opens its connections anew and starts with a lead-in, not counted: a system idle while the
              // other scenarios ran comes back slower (on Node 20 our stack's first second after 40 s idle ran about a
              // fifth below speed, V8's memory reducer having shrunk its heap), and is at speed about a second later
              // (docs/benchmarks.md).
              const run = await measure(system.url, routePaths[route], system.processes, stage !== 'baseline' && stage !== 'off', sliceSeconds, options.leadInSeconds);
              const entry = slices.get(scenario.id) ?? { scenario, runs: [] };
              entry.runs.push(run);
              slices.set(scenario.id, entry);
            }
            // Right after the system's last slice: the memory it holds when the load stops.
            if (k === sliceCount - 1) sampleRss(system, stage, r, 'after');
          }
        }
        for (const { scenario, runs: parts } of slices.values()) {
          const run = joinSlices(parts);
          record(scenario, run);
          log(
            `  ${scenario.label}: ${run.throughput} req/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms` +
              `${run.non2xx + run.errors > 0 ? `, ${run.non2xx} non-2xx, ${run.errors} errors` : ''}` +
              `${run.trace ? `, ${run.trace.segmentsPerRequest} segments/request${run.trace.sink.dropped ? ` (${dropShare(run.trace.sink)} dropped at the sink)` : ''}` : ''}`,
          );
        }
        // Every system has been idle at least this long since its last slice (most of them longer).
        await sleep(settleSeconds * 1000);
        for (const [stage, system] of systems) sampleRss(system, stage, r, 'settled');
        // Idle since they were timed at the start of the run, with every stack of the run measured beside them.
        for (const [service, idle] of alone) idleAlone[service].push(idle.residentBytes());
      });
    }

    const profiles: CpuProfileFigures[] = [];
    if (options.profile) {
      const preload = pathToFileURL(entryPath('cpu-profiler')).href;
      const profilerEnv = (directory: string, system: SystemName): Record<string, string> => ({
        NODE_OPTIONS: `${(system === 'ours' ? options.nodeOptions : undefined) ?? process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim(),
        BENCH_CPU_PROFILE_DIR: directory,
      });
      for (const stage of profiledStages) {
        for (const route of routes) {
          const directory = path.join(scratch, `profile-${route}-${stage}`);
          await mkdir(directory);
          const target =
            stage === 'baseline'
              ? await startBaselineStack({ v1, v2, policyEnv, databaseEnv: database.env, appVersion: umPackage.version, env: { ...mallocEnv, ...profilerEnv(directory, 'baseline') } })
              : await startOurStack({
                  v1,
                  v2,
                  databaseEnv: database.env,
                  serviceEnv: { ...tracingEnv(stage), LOG_LEVEL: options.logLevel, ...profilerEnv(directory, 'ours') },
                  usermgmtEnv: policyEnv,
                });
          // One fixed rate for every configuration, so CPU per request compares like with like (a saturated
          // server batches more work per event-loop turn and spends less per request).
          const profiledJob = {
            ...job(`${target.url}${routePaths[route]}`),
            durationSeconds: Math.max(1, options.durationSeconds / 2),
            overallRate: options.profileRate,
          };
          const run = await holding(target.close, () =>
            runLoad(profiledJob, target.processes, () => {
              // Sampling starts with the measured part of the run: start-up and warm-up stay out of the profile.
              for (const { pid } of target.processes) process.kill(pid, 'SIGWINCH');
            }),
          );
          const files = await readdir(directory);
          const front = stage === 'baseline' ? { service: 'baseline-front', role: 'front' } : { service: 'user-management', role: 'user-management' };
          const back = stage === 'baseline' ? { service: 'baseline-back', role: 'notification' } : { service: 'notification', role: 'notification' };
          // On /users the notification replicas only answer health probes: nothing per request to show.
          for (const { service, role } of route === 'xray' ? [front, back] : [front]) {
            const mine = files.filter((file) => file.startsWith(`${service}-`)).map((file) => path.join(directory, file));
            if (mine.length === 0) continue;
            const summary = summarizeProfiles(mine);
            // The profile says where the time went; /proc says how much CPU it was. On a busy machine a sampled
            // thread is sometimes waiting for a core, so the profile's own totals overstate CPU time.
            const cpuMicros = ((run.cpu.byRole[role] ?? 0) * run.durationSeconds * 1e6) / Math.max(1, run.ok2xx);
            const round = (micros: number): number => Math.round(micros * 10) / 10;
            const figures: CpuProfileFigures = {
              service,
              route,
              tracing: stage === 'baseline' ? 'none' : stage,
              requests: run.ok2xx,
              throughput: run.throughput,
              microsPerRequest: round(cpuMicros),
              categories: summary.categories.map(({ category, micros }) => ({
                category,
                microsPerRequest: round((micros / Math.max(1, summary.busyMicros)) * cpuMicros),
              })),
            };
            profiles.push(figures);
            log(`  profiled ${service} on ${routePaths[route]}${stage === 'baseline' ? '' : `, tracing ${stage}`}: ${figures.microsPerRequest} µs of CPU per request`);
          }
        }
      }
    }

    // In a fixed order: the ceiling, then each route's baseline and ours by tracing mode, whatever order slices ran in.
    const position = (scenario: Scenario): number =>
      scenario.system === 'trivial'
        ? -1
        : routes.indexOf(scenario.route as RouteName) * stages.length + stages.indexOf(scenario.system === 'ours' ? (scenario.tracing as Stage) : scenario.system);
    const scenarios = [...runsOf.values()].sort((a, b) => position(a.scenario) - position(b.scenario)).map(({ scenario, runs }): ScenarioResult => ({
      ...scenario,
      runs,
      throughput: spread(runs.map((run) => run.throughput)),
      p50Ms: spread(runs.map((run) => run.latencyMs.p50)),
      p99Ms: spread(runs.map((run) => run.latencyMs.p99)),
      generatorCpu: spread(runs.map((run) => run.cpu.generator)),
      failed: runs.reduce((sum, run) => sum + run.non2xx + run.errors, 0),
    }));
    const runsFor = (route: RouteName, system: SystemName, tracing: TracingMode | 'none'): ScenarioRun[] =>
      scenarios.find((s) => s.id === scenarioOf(system, route, tracing).id)?.runs ?? [];
    const comparisons = routes.map((route): Comparison => {
      const throughput = (system: SystemName, tracing: TracingMode | 'none'): number[] => runsFor(route, system, tracing).map((run) => run.throughput);
      const cpu = (system: SystemName, tracing: TracingMode | 'none'): number[] => runsFor(route, system, tracing).map(systemCpuMsPerResponse);
      const lost = (traced: number[], off: number[]): number[] => ratios(traced, off).map((ratio) => 1 - ratio);
      // Run by run: the CPU the datagrams added to the baseline, added to ours untraced instead.
      const floorOn = (off: number[], baseline: number[], floor: number[]): number[] =>
        off.map((ours, i) => 1 - ours / (ours + (floor[i] ?? Number.NaN) - (baseline[i] ?? Number.NaN)));
      return {
        route,
        oursOverBaseline: spread(ratios(throughput('ours', 'off'), throughput('baseline', 'none'))),
        tracingCost: spread(lost(throughput('ours', 'on'), throughput('ours', 'off'))),
        defaultSamplingCost: spread(lost(throughput('ours', 'default'), throughput('ours', 'off'))),
        unsampledCost: spread(lost(throughput('ours', 'unsampled'), throughput('ours', 'off'))),
        tracedOverBaseline: spread(ratios(throughput('ours', 'on'), throughput('baseline', 'none'))),
        floorCost: spread(lost(throughput('floor', 'none'), throughput('baseline', 'none'))),
        // The same comparisons from CPU time per response (a CPU-bound server's throughput is its inverse).
        cpuOursOverBaseline: spread(ratios(cpu('baseline', 'none'), cpu('ours', 'off'))),
        cpuTracingCost: spread(lost(cpu('ours', 'off'), cpu('ours', 'on'))),
        cpuDefaultSamplingCost: spread(lost(cpu('ours', 'off'), cpu('ours', 'default'))),
        cpuUnsampledCost: spread(lost(cpu('ours', 'off'), cpu('ours', 'unsampled'))),
        cpuFloorCost: spread(lost(cpu('baseline', 'none'), cpu('floor', 'none'))),
        cpuFloorOnOurs: spread(floorOn(cpu('ours', 'off'), cpu('baseline', 'none'), cpu('floor', 'none'))),
      };
    });
    /** A role's samples in MB, stack by stack (the slots of the stages a role's system does not run are empty). */
    const stackSamplesMB = (slots: number[]): number[] => Object.values(slots).map(mb);
    const services = (['notification', 'user-management'] as const).map(
      (service): ServiceFigures => ({
        service,
        startupMs: spread(startup[service]),
        ...(startupSyns[service].length > 0 ? { startupSynRetransmits: startupSyns[service] } : {}),
        rssIdleMB: spread(stackSamplesMB(rss[service].idle)),
        rssAfterLoadMB: spread(stackSamplesMB(rss[service].after)),
        rssSettledMB: spread(stackSamplesMB(rss[service].settled)),
        rssIdleAloneMB: spread(idleAlone[service].map(mb)),
      }),
    );
    const baselineMemory = (['front', 'notification'] as const).map(
      (role): BaselineMemory => ({
        process: role === 'front' ? 'front' : 'back',
        rssIdleMB: spread(stackSamplesMB(baselineRss[role].idle)),
        rssAfterLoadMB: spread(stackSamplesMB(baselineRss[role].after)),
        rssSettledMB: spread(stackSamplesMB(baselineRss[role].settled)),
      }),
    );
    const ceiling = scenarios.find((s) => s.id === ceilingScenario.id) as ScenarioResult;
    const stacked = scenarios.filter((s) => s.system !== 'trivial');
    const highestMeasured = Math.max(...stacked.map((s) => s.throughput.median));
    const finishedAt = new Date();
    return {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      wallSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      machine: { ...machine, loadAverageEnd: os.loadavg().map((n) => Math.round(n * 100) / 100) },
      settings: {
        runs: options.runs,
        durationSeconds: options.durationSeconds,
        slices: sliceCount,
        warmupSeconds: options.warmupSeconds,
        leadInSeconds: options.leadInSeconds,
        settleSeconds,
        connections: options.connections,
        users: options.users,
        v1,
        v2,
        logLevel: options.logLevel,
        policy,
        ...(options.nodeOptions ? { nodeOptions: options.nodeOptions } : {}),
        allocator: options.allocator,
        quick: options.quick,
        profile: options.profile,
        ...(options.profile ? { profileRate: options.profileRate } : {}),
      },
      scenarios,
      comparisons,
      services,
      baselineMemory,
      generator: {
        ceiling: ceiling.throughput,
        highestMeasured,
        highestGeneratorCpu: Math.max(...stacked.flatMap((s) => s.runs.map((run) => run.cpu.generator))),
        notTheBottleneck: ceiling.throughput.min >= 1.5 * highestMeasured,
      },
      sameBodies: {
        xray: isDeepStrictEqual(bodies.baseline?.xray, bodies.ours?.xray),
        users: isDeepStrictEqual(bodies.baseline?.users, bodies.ours?.users),
      },
      ...(options.profile ? { profiles } : {}),
      stackWarnings,
      goals,
    };
  } finally {
    openResources.delete(release);
    await release();
  }
}
