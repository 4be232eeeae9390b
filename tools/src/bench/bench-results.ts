import type { Allocator } from './allocator.js';
import type { LoadRun } from './load-generator.js';
import type { MachineInfo } from './proc-stats.js';
import type { Spread } from './statistics.js';
import type { SinkReport } from './xray-sink-protocol.js';

export type RouteName = 'xray' | 'users';
/** `floor`: the baseline sending one datagram per request and hop to the sink (baseline/segment-datagrams.ts). */
export type SystemName = 'baseline' | 'floor' | 'ours';
/**
 * `on`: every request sampled and sent; `default`: the SDK's default rule (the first request each second and 5% of
 * the others), which a deployment without rules of its own gets; `unsampled`: the SDK on but sampling none.
 */
export type TracingMode = 'off' | 'on' | 'default' | 'unsampled';

export const tracingLabel: Record<TracingMode, string> = {
  off: 'tracing off',
  on: 'tracing on, every request sampled',
  default: 'tracing on, default sampling (1/s + 5%)',
  unsampled: 'tracing on, none sampled',
};

export const routePaths: Record<RouteName, string> = {
  xray: '/usermgmt/notification-xray',
  users: '/usermgmt/users',
};

export interface ScenarioRun extends LoadRun {
  /**
   * With tracing on: datagrams sent to the sink per response (those it read and those its full socket dropped), and
   * what it saw in its parsed sample.
   */
  trace?: { segmentsPerRequest: number; sink: SinkReport };
  /** How many interleaved slices of load this run of the scenario is made of. */
  slices?: number;
}

export interface ScenarioResult {
  id: string;
  label: string;
  system: SystemName | 'trivial';
  route: RouteName | 'trivial';
  tracing: TracingMode | 'none';
  runs: ScenarioRun[];
  throughput: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  /** CPU of the load generator's process, in cores. */
  generatorCpu: Spread;
  failed: number;
}

export interface Comparison {
  route: RouteName;
  /** Ours with tracing off over the baseline, per run. */
  oursOverBaseline: Spread;
  /** Throughput lost when tracing samples every request: 1 - on/off, per run. */
  tracingCost: Spread;
  /** Throughput lost with the SDK's default sampling: 1 - default/off, per run. */
  defaultSamplingCost: Spread;
  /** Throughput lost with the SDK on but nothing sampled: 1 - unsampled/off, per run. */
  unsampledCost: Spread;
  /** Ours with tracing on over the baseline, per run. */
  tracedOverBaseline: Spread;
  /**
   * Throughput the baseline loses by sending one datagram per request and hop (1 - floor/baseline, per run): what
   * sampling every request costs at the least, before any tracer code.
   */
  floorCost: Spread;
  /** Baseline over ours (tracing off) in CPU time of the system per response: what ours/baseline would be if both were CPU-bound. */
  cpuOursOverBaseline: Spread;
  /** 1 - (CPU per response tracing off) / (tracing on, every request sampled): the throughput a CPU-bound service loses. */
  cpuTracingCost: Spread;
  /** The same with the SDK's default sampling. */
  cpuDefaultSamplingCost: Spread;
  /** The same with tracing on and nothing sampled. */
  cpuUnsampledCost: Spread;
  /** 1 - (baseline's CPU per response) / (the floor's). */
  cpuFloorCost: Spread;
  /**
   * The floor's datagrams on our stack: the CPU per response they added to the baseline, added to ours with tracing
   * off, as a share of the throughput (1 - off / (off + floor - baseline)). What a tracer whose own code cost nothing
   * would lose on our stack when sampling every request.
   */
  cpuFloorOnOurs: Spread;
}

export interface ServiceFigures {
  service: 'notification' | 'user-management';
  /** From process start to the first 200 of its readiness route, started alone. */
  startupMs: Spread;
  /**
   * SYNs the machine resent while each start was timed, run by run (any process's; absent where the kernel's counter
   * is not readable). A poll whose SYN was resent waited 1 s for it, which `startupMs` then includes.
   */
  startupSynRetransmits?: number[];
  /**
   * Largest resident memory among the service's processes in our stack: idle after start, right after the stack's
   * last slice of load, and `settings.settleSeconds` later. `runs` holds one value per stack, in the same order in
   * all three (run by run; in each, tracing off, every request sampled, the default rule, nothing sampled).
   */
  rssIdleMB: Spread;
  rssAfterLoadMB: Spread;
  rssSettledMB: Spread;
  /**
   * The service started alone at the start of each run (the one timed for `startupMs`), left idle while the run's
   * stacks were measured (several minutes), sampled at the end of the run: one value per run.
   */
  rssIdleAloneMB: Spread;
}

/**
 * The baseline's processes, sampled as ours are: what a bare-http Node process doing the same work holds, for reading
 * our services' figures against (no goal applies to them).
 */
export interface BaselineMemory {
  /** `front`: user management's part (the same mysql2 pool and undici client); `back`: the largest notification replica. */
  process: 'front' | 'back';
  rssIdleMB: Spread;
  rssAfterLoadMB: Spread;
  rssSettledMB: Spread;
}

export interface GeneratorCheck {
  /** Throughput of the load generator against one trivial bare-http server. */
  ceiling: Spread;
  /** Highest median throughput of any scenario through a stack. */
  highestMeasured: number;
  /** Largest CPU share of the generator in any scenario run, in cores. */
  highestGeneratorCpu: number;
  notTheBottleneck: boolean;
}

/** Where one service's CPU went under load, from a V8 CPU profile taken over the measured part of one run. */
export interface CpuProfileFigures {
  /** `baseline-front` and `baseline-back` are the baseline's processes. */
  service: string;
  route: RouteName;
  tracing: TracingMode | 'none';
  /** 2xx responses during the profiled run, and per second (the rate asked for, if the service kept up). */
  requests: number;
  throughput: number;
  /** CPU time per response from /proc (all replicas of the service added up), in microseconds. */
  microsPerRequest: number;
  /** The same split by the profile's shares of busy samples, by category (an npm package, one of ours, a part of node, V8), largest first. */
  categories: Array<{ category: string; microsPerRequest: number }>;
}

export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  machine: MachineInfo;
  settings: {
    runs: number;
    durationSeconds: number;
    /** Interleaved slices each scenario's measured time is cut into, per run. */
    slices: number;
    warmupSeconds: number;
    /** Unmeasured seconds at the start of each slice (`--lead-in`; files from before the evening of 2026-12-03 lack it: 0.3). */
    leadInSeconds: number;
    /** How long after its last slice a system's memory is sampled the second time. */
    settleSeconds: number;
    connections: number;
    users: number;
    v1: number;
    v2: number;
    logLevel: string;
    policy: string;
    /** NODE_OPTIONS our services ran with (`--node-options`), when any. */
    nodeOptions?: string;
    /** The malloc every server ran on (`--allocator`; files from before the night of 2026-12-04 lack it: glibc). */
    allocator?: Allocator;
    quick: boolean;
    profile: boolean;
    profileRate?: number;
  };
  scenarios: ScenarioResult[];
  comparisons: Comparison[];
  services: ServiceFigures[];
  baselineMemory: BaselineMemory[];
  generator: GeneratorCheck;
  /** Whether the baseline answered the same JSON as ours (the xray body with its version blanked out). */
  sameBodies: Record<RouteName, boolean>;
  /** With --profile only. */
  profiles?: CpuProfileFigures[];
  /** Warning and error lines our stack logged, per stack start (none expected). */
  stackWarnings: Array<{ tracing: TracingMode; run: number; count: number; first: string[] }>;
  goals: { oursOverBaseline: number; tracingCost: number; startupMs: number; rssMB: number };
}
