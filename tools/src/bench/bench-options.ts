import { parseArgs } from 'node:util';
import { numberFlag, UsageError } from '../cli-options.js';
import { allocators, type Allocator } from './allocator.js';

export { UsageError };

export interface BenchOptions {
  runs: number;
  /** Seconds of each measured load run. */
  durationSeconds: number;
  /** Seconds of load before each measured run, not counted. */
  warmupSeconds: number;
  /**
   * Seconds of load before each interleaved slice is counted: a system back from idling while the others were
   * measured is not at speed at once (on Node 20, V8's memory reducer has shrunk its heap meanwhile).
   */
  leadInSeconds: number;
  /** Concurrent keep-alive connections of the load generator. */
  connections: number;
  /** Users seeded for /usermgmt/users. */
  users: number;
  /** LOG_LEVEL of our services during the bench. */
  logLevel: string;
  /** The connection policy of user management's notification client, mirrored by the baseline; default its own default. */
  policy: string | undefined;
  /** Directory the result JSON goes to. */
  outDir: string;
  quick: boolean;
  /** After the measured runs, profile our services' CPU with tracing off, on and unsampled. */
  profile: boolean;
  /** Requests per second of the profiled runs: one fixed rate, so every configuration is compared at the same load. */
  profileRate: number;
  /** NODE_OPTIONS of our services (V8 heap limits, say); the baseline and the load generator keep Node's defaults. */
  nodeOptions: string | undefined;
  /** The malloc of every server process, ours and the baseline's: jemalloc (the images') by default. */
  allocator: Allocator;
}

export const usage = `usage: npm run bench -- [--runs N] [--duration S] [--warmup S] [--lead-in S] [--connections C] [--log-level L]
                        [--policy P] [--node-options=FLAGS] [--allocator A] [--out DIR] [--profile [--profile-rate R]] [--quick]

Measures, on this machine, our local stack at 2 V1 + 2 V2 against a bare-http baseline of the same chain, with
tracing off, on (every request sampled) and on without sampling; start-up time and memory of each service; and the
load generator's own ceiling. Prints markdown tables and, last, "results: <path of the JSON file>".

  --runs N         measured runs of every scenario, interleaved (default 3)
  --duration S     seconds of each measured load run (default 10)
  --warmup S       seconds of unmeasured load before each run (default 2)
  --lead-in S      seconds of unmeasured load at the start of each slice, while a system back from idle gets up to
                   speed (default 1.5)
  --connections C  concurrent connections of the load generator (default 50)
  --log-level L    LOG_LEVEL of our services (default warn: request logs would measure the terminal)
  --policy P       NOTIFICATION_CONNECTION_POLICY for ours and the baseline (default: user management's default)
  --node-options=FLAGS
                   NODE_OPTIONS of our services, e.g. --node-options="--max-semi-space-size=4 --max-old-space-size=80" to
                   see what a smaller heap saves in memory and costs in throughput (default: none)
  --allocator A    the malloc of every server, ours and the baseline's: jemalloc, as the images run them (needs
                   Debian's libjemalloc2), or glibc (default jemalloc)
  --out DIR        where the JSON goes (default bench-results)
  --profile        then profile the servers' CPU at one fixed request rate (the baseline; ours with tracing
                   off, on and on without sampling) and show where each request's CPU time goes
                   (about 1.5 minutes more)
  --profile-rate R requests per second of the profiled runs (default 500, below every configuration's limit)
  --quick          a smoke run of about a minute: 1 run of 1 s, 10 connections (figures mean nothing)`;

/** Parses the command line; `--help` gives undefined. */
export function parseBenchOptions(args: string[]): BenchOptions | undefined {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        runs: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        'lead-in': { type: 'string' },
        connections: { type: 'string' },
        'log-level': { type: 'string' },
        policy: { type: 'string' },
        'node-options': { type: 'string' },
        allocator: { type: 'string' },
        out: { type: 'string' },
        quick: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        'profile-rate': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  const quick = values.quick === true;
  const logLevel = values['log-level'] ?? 'warn';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new UsageError('--log-level must be one of fatal, error, warn, info, debug, trace, silent');
  }
  const nodeOptions = values['node-options']?.trim();
  if (nodeOptions !== undefined && !/^--[a-z0-9-]+(=\S+)?(\s+--[a-z0-9-]+(=\S+)?)*$/.test(nodeOptions)) {
    throw new UsageError('--node-options must be Node options separated by spaces, each starting with --, e.g. "--max-old-space-size=80"');
  }
  const allocator = values.allocator ?? 'jemalloc';
  if (!allocators.includes(allocator as Allocator)) throw new UsageError(`--allocator must be one of ${allocators.join(', ')}`);
  return {
    quick,
    runs: numberFlag('runs', values.runs, quick ? 1 : 3, 1, 20, true),
    durationSeconds: numberFlag('duration', values.duration, quick ? 1 : 10, 0.5, 600, false),
    warmupSeconds: numberFlag('warmup', values.warmup, quick ? 0.5 : 2, 0, 600, false),
    leadInSeconds: numberFlag('lead-in', values['lead-in'], quick ? 0.3 : 1.5, 0, 60, false),
    connections: numberFlag('connections', values.connections, quick ? 10 : 50, 1, 1000, true),
    users: 100,
    logLevel,
    policy: values.policy,
    outDir: values.out ?? 'bench-results',
    profile: values.profile === true,
    profileRate: numberFlag('profile-rate', values['profile-rate'], quick ? 200 : 500, 10, 100_000, true),
    nodeOptions: nodeOptions || undefined,
    allocator: allocator as Allocator,
  };
}
