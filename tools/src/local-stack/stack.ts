import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@canary/service-kit';
import { createBalancer, type Balancer, type BalancerEvent } from '../balancer/index.js';
import { balancerEventLog } from '../balancer/event-log.js';
import { serviceBundle } from '../bundle/bundle-paths.js';
import { stackEnvSchema } from './config.js';
import { ensureDatabase } from './database.js';
import { startMailSink, type MailSink } from './mail-sink.js';
import { describeExit, startServiceProcess, type Exit, type ServiceProcess, type Write } from './service-process.js';

export type Version = 'V1' | 'V2';

export interface ReplicaCounts {
  v1: number;
  v2: number;
}

/** The course's table goes up to 4 replicas; 16 leaves room to measure finer splits without exhausting 2 cores. */
export const maxReplicas = 16;

export interface LocalStackOptions extends Partial<ReplicaCounts> {
  /** User management's port; default 8095, 0 picks a free one. */
  usermgmtPort?: number;
  /** The notification balancer's port; default 8096, 0 picks a free one. */
  notificationPort?: number;
  /** Where DB_*, AWS_MAIL_SERVER_*, AWS_XRAY_*, LOG_LEVEL, ... come from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Extra variables for every notification replica (SHUTDOWN_DRAIN_MS, for instance). */
  notificationEnv?: Record<string, string>;
  /** Extra variables for user management (a connection policy, for instance). */
  usermgmtEnv?: Record<string, string>;
  /** Where log lines go; default the stack's stdout and stderr. */
  write?: Write;
  /** The repository root; default the one this module lives in. */
  rootDir?: string;
  /** How often the balancer probes each replica's readiness; default 500 ms. */
  healthIntervalMs?: number;
  /** How long a child may take to stop after SIGTERM before it gets SIGKILL; default 15 s. */
  stopGraceMs?: number;
  /** How long a child may take to listen, and a replica to become healthy; default 60 s. */
  startTimeoutMs?: number;
  /** A child exited without being asked to (it is reported on the log either way). */
  onUnexpectedExit?: (name: string, exit: Exit) => void;
}

export interface ReplicaInfo {
  name: string;
  version: Version;
  pid: number;
  port: number;
}

export interface LocalStack {
  /** Everything listens on this loopback address. */
  host: string;
  usermgmtPort: number;
  usermgmtPid: number;
  notificationPort: number;
  balancer: Balancer;
  /** The SMTP server the replicas send to: the stack's own sink, or AWS_MAIL_SERVER_HOST/PORT. */
  mail: { host: string; port: number; sink: boolean };
  database: { host: string; port: number; name: string; user: string; created: boolean };
  /** The notification replicas running now, oldest first in each version. */
  replicas(): ReplicaInfo[];
  /**
   * Moves to another row of the table: starts the new replicas and waits until the balancer sees them healthy,
   * then removes the surplus ones from the balancer (no new connections) and stops them (SIGTERM: in-flight
   * requests finish). Calls run one after the other.
   */
  scale(counts: ReplicaCounts): Promise<void>;
  /** Stops user management, then the replicas, then the balancer and the mail sink. */
  close(): Promise<void>;
  /** SIGKILL to every child, for a second Ctrl-C. */
  kill(): void;
}

interface Replica extends ReplicaInfo {
  /** The n of its name `v1-n`: replicas are numbered in the order they were started, per version. */
  index: number;
  process: ServiceProcess;
}

const host = '127.0.0.1';
const healthPath = '/notification/health/ready';

export function checkCounts({ v1, v2 }: ReplicaCounts): void {
  for (const [name, value] of [
    ['v1', v1],
    ['v2', v2],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > maxReplicas) {
      throw new RangeError(`${name} must be an integer from 0 to ${maxReplicas}, not ${value}`);
    }
  }
}

function writeToConsole(line: string, stream: 'stdout' | 'stderr'): void {
  process[stream].write(`${line}\n`);
}

function without(env: NodeJS.ProcessEnv, pattern: RegExp): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !pattern.test(key)));
}

/**
 * Runs the course's canary on one machine: V1 and V2 notification replicas behind a balancer that picks one at
 * random per new connection (a ClusterIP Service), and user management pointed at that balancer.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const initial = { v1: options.v1 ?? 2, v2: options.v2 ?? 2 };
  checkCounts(initial);
  const env = options.env ?? process.env;
  const write = options.write ?? writeToConsole;
  const say = (message: string): void => write(`[stack] ${message}`, 'stdout');
  const stopGraceMs = options.stopGraceMs ?? 15_000;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const rootDir = options.rootDir ?? fileURLToPath(new URL('../../../', import.meta.url));
  const scripts = {
    notification: serviceBundle(rootDir, 'notification'),
    usermgmt: serviceBundle(rootDir, 'user-management'),
    // Always the built preload: this module may itself run from source under a test runner.
    preload: path.join(rootDir, 'tools/dist/local-stack/parent-watch.js'),
  };
  for (const script of Object.values(scripts)) {
    if (!existsSync(script)) throw new Error(`${script} is missing: build first (npm run build; npm start does it)`);
  }

  const stackEnv = loadConfig(stackEnvSchema, env);
  const created = await ensureDatabase(stackEnv);
  say(`database ${stackEnv.DB_NAME} ${created ? 'created' : 'exists'} on ${stackEnv.DB_USERNAME}@${stackEnv.DB_HOSTNAME}:${stackEnv.DB_PORT}`);

  const replicas: Replica[] = [];
  const counters: Record<Version, number> = { V1: 0, V2: 0 };
  const names = new Map<string, string>();
  let sink: MailSink | undefined;
  let balancer: Balancer | undefined;
  let usermgmt: ServiceProcess | undefined;
  let closing: Promise<void> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const logEvent = balancerEventLog(({ message }) => write(`[balancer] ${message}`, 'stdout'));
  function onBalancerEvent(event: BalancerEvent): void {
    logEvent('backend' in event ? { ...event, backend: `${names.get(event.backend) ?? '?'} (${event.backend})` } : event);
  }

  function baseEnv(): NodeJS.ProcessEnv {
    return { ...env, HOST: host };
  }

  function mailEnv(): NodeJS.ProcessEnv {
    if (!sink) return {};
    return { AWS_MAIL_SERVER_HOST: host, AWS_MAIL_SERVER_PORT: String(sink.port) };
  }

  function replicaEnv(version: Version): NodeJS.ProcessEnv {
    // The database password is none of the notification service's business; the sink takes no credentials.
    const inherited = without(baseEnv(), sink ? /^(DB_PASSWORD|AWS_MAIL_SERVER_(USERNAME|PASSWORD))$/ : /^DB_PASSWORD$/);
    return {
      ...inherited,
      ...mailEnv(),
      ...options.notificationEnv,
      PORT: '0',
      APP_VERSION: version,
      AWS_XRAY_TRACING_NAME: `${version}-Notification-Microservice`,
    };
  }

  function usermgmtEnv(notificationPort: number): NodeJS.ProcessEnv {
    return {
      ...without(baseEnv(), /^AWS_MAIL_SERVER_/),
      DB_HOSTNAME: stackEnv.DB_HOSTNAME,
      DB_PORT: String(stackEnv.DB_PORT),
      DB_NAME: stackEnv.DB_NAME,
      DB_USERNAME: stackEnv.DB_USERNAME,
      DB_PASSWORD: stackEnv.DB_PASSWORD,
      ...options.usermgmtEnv,
      PORT: String(options.usermgmtPort ?? 8095),
      NOTIFICATION_SERVICE_HOST: host,
      NOTIFICATION_SERVICE_PORT: String(notificationPort),
      AWS_XRAY_TRACING_NAME: 'User-Management-Microservice',
    };
  }

  function lost(name: string, exit: Exit): void {
    const index = replicas.findIndex((r) => r.name === name);
    if (index >= 0) {
      const [replica] = replicas.splice(index, 1);
      balancer?.removeBackend({ host, port: replica!.port });
      say(`${name} (pid ${replica!.pid}) ${describeExit(exit)} unexpectedly; the balancer no longer uses it`);
    } else {
      say(`${name} ${describeExit(exit)} unexpectedly; the stack keeps running, stop it with Ctrl-C`);
    }
    options.onUnexpectedExit?.(name, exit);
  }

  async function startReplica(version: Version, target: Balancer): Promise<Replica> {
    counters[version] += 1;
    const index = counters[version];
    const name = `${version.toLowerCase()}-${index}`;
    const child = await startServiceProcess({
      name,
      script: scripts.notification,
      env: replicaEnv(version),
      preload: scripts.preload,
      write,
      listenTimeoutMs: startTimeoutMs,
      onUnexpectedExit: (exit) => lost(name, exit),
    });
    const replica: Replica = { name, version, index, pid: child.pid, port: child.port, process: child };
    const address = { host, port: child.port };
    names.set(`${host}:${child.port}`, name);
    replicas.push(replica);
    target.addBackend(address);
    try {
      if (closing) throw new Error(`${name} started while the stack was stopping`);
      await target.whenHealthy(address, startTimeoutMs);
      return replica;
    } catch (err) {
      await retire(replica);
      throw err;
    }
  }

  async function retire(replica: Replica): Promise<void> {
    const index = replicas.indexOf(replica);
    if (index >= 0) replicas.splice(index, 1);
    balancer?.removeBackend({ host, port: replica.port });
    const exit = await replica.process.stop(stopGraceMs);
    say(`${replica.name} stopped (${describeExit(exit)})`);
  }

  async function applyScale(counts: ReplicaCounts, target: Balancer): Promise<void> {
    if (closing) throw new Error('the stack is stopping');
    const additions: Version[] = [];
    const removals: Replica[] = [];
    for (const [version, wanted] of [
      ['V1', counts.v1],
      ['V2', counts.v2],
    ] as const) {
      const current = replicas.filter((r) => r.version === version).sort((a, b) => a.index - b.index);
      for (let i = current.length; i < wanted; i += 1) additions.push(version);
      removals.push(...current.slice(wanted));
    }
    const started = await Promise.allSettled(additions.map((version) => startReplica(version, target)));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure) {
      // All or nothing: the replicas this call started go again, so the split stays the one before the call.
      await Promise.all(started.flatMap((result) => (result.status === 'fulfilled' ? [retire(result.value)] : [])));
      throw failure.reason;
    }
    // Only once the new replicas take traffic do the surplus ones leave, as a rolling update would.
    for (const replica of removals) say(`draining ${replica.name}: no new connections, then SIGTERM`);
    await Promise.all(removals.map(retire));
    say(`replicas: V1 ×${counts.v1}, V2 ×${counts.v2}`);
  }

  async function shutdown(): Promise<void> {
    await queue.catch(() => {});
    if (usermgmt) {
      const exit = await usermgmt.stop(stopGraceMs);
      say(`user-management stopped (${describeExit(exit)})`);
    }
    await Promise.all([...replicas].map(retire));
    await balancer?.close();
    await sink?.close();
    say('stopped');
  }

  function killAll(): void {
    usermgmt?.kill();
    for (const replica of replicas) replica.process.kill();
  }

  try {
    if (stackEnv.AWS_MAIL_SERVER_HOST === undefined) {
      sink = await startMailSink(host, (line) => write(`[mail] ${line}`, 'stdout'));
    }
    const notificationPort = options.notificationPort ?? 8096;
    balancer = await createBalancer({
      host,
      port: notificationPort,
      healthPath,
      healthIntervalMs: options.healthIntervalMs ?? 500,
      onEvent: onBalancerEvent,
    }).catch((err: Error) => {
      throw new Error(`the notification balancer cannot listen on ${host}:${notificationPort}: ${err.message}`);
    });
    const target = balancer;
    const first = applyScale(initial, target);
    queue = first;
    await first;
    usermgmt = await startServiceProcess({
      name: 'user-management',
      script: scripts.usermgmt,
      env: usermgmtEnv(target.port),
      preload: scripts.preload,
      write,
      listenTimeoutMs: startTimeoutMs,
      onUnexpectedExit: (exit) => lost('user-management', exit),
    });
  } catch (err) {
    closing = shutdown();
    await closing;
    throw err;
  }

  const ready = usermgmt;
  const target = balancer;
  return {
    host,
    usermgmtPort: ready.port,
    usermgmtPid: ready.pid,
    notificationPort: target.port,
    balancer: target,
    mail: sink
      ? { host, port: sink.port, sink: true }
      : { host: stackEnv.AWS_MAIL_SERVER_HOST ?? '', port: Number(env.AWS_MAIL_SERVER_PORT || 587), sink: false },
    database: { host: stackEnv.DB_HOSTNAME, port: stackEnv.DB_PORT, name: stackEnv.DB_NAME, user: stackEnv.DB_USERNAME, created },
    replicas: () =>
      [...replicas]
        .sort((a, b) => a.version.localeCompare(b.version) || a.index - b.index)
        .map(({ name, version, pid, port }) => ({ name, version, pid, port })),
    async scale(counts) {
      checkCounts(counts);
      const run = queue.catch(() => {}).then(() => applyScale(counts, target));
      queue = run;
      return run;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
    kill: killAll,
  };
}
