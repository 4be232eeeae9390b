import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { startLocalStack, type LocalStack } from '../local-stack/index.js';
import type { LoadFigures, LoadJob, WorkerMessage } from './load-protocol.js';
import type { LoadOptions } from './load-options.js';
import { sample, watchPeaks, type MemorySample, type WatchedService } from './memory.js';

export interface ServiceMemory {
  name: string;
  pid: number;
  before: MemorySample;
  peakRssBytes: number;
  after: MemorySample;
}

export interface LoadReport {
  options: LoadOptions;
  startedAt: string;
  logLevel: string;
  tracing: boolean;
  figures: LoadFigures;
  /** 2xx answers per second. */
  throughput: number;
  memory: ServiceMemory[];
  /**
   * After the settle: users the measured run created, the outbox rows by status, and how long after the
   * load the last account e-mail went out (undefined if some were still pending at the limit).
   */
  database: { createdUsers: number; outbox: Record<string, number>; outboxDrainSeconds: number | undefined };
  /** Service log lines at warn level or above, and anything on stderr (the first 20 kept). */
  warnings: { count: number; first: string[] };
  /** Why the run failed; empty when it passed. */
  failures: string[];
}

/** How long after the load the account e-mails may take to leave the outbox before the run fails. */
const outboxDrainLimitMs = 300_000;

const workerPath = fileURLToPath(new URL('./load-worker.js', import.meta.url));

interface DatabaseServer {
  host: string;
  port: number;
  user: string;
  password: string;
}

function databaseServer(env: NodeJS.ProcessEnv): DatabaseServer {
  return { host: env.DB_HOSTNAME || '127.0.0.1', port: Number(env.DB_PORT || 3306), user: env.DB_USERNAME || 'root', password: env.DB_PASSWORD ?? '' };
}

/** bcrypt's alphabet: a value in its format that no password matches (nobody logs in as a seeded user). */
function unusableHash(): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `$2b$10$${[...randomBytes(53)].map((byte) => alphabet[byte % 64]).join('')}`;
}

async function withConnection<T>(server: DatabaseServer, database: string | undefined, work: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await mysql.createConnection({ ...server, ...(database ? { database } : {}), connectTimeout: 5000 });
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

function runWorker(job: LoadJob): Promise<LoadFigures> {
  return new Promise((resolve, reject) => {
    const worker = fork(workerPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let settled = false;
    const limitMs = (job.durationSeconds + job.timeoutSeconds + 60) * 1000;
    const limit = setTimeout(() => {
      worker.kill('SIGKILL');
      finish(new Error(`the load generator did not finish within ${limitMs / 1000} s`));
    }, limitMs);
    function finish(err: Error | undefined, figures?: LoadFigures): void {
      if (settled) return;
      settled = true;
      clearTimeout(limit);
      if (err) reject(err);
      else resolve(figures!);
    }
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'failed') finish(new Error(`the load generator failed: ${message.message}`));
      else {
        const { type: _type, ...figures } = message;
        finish(undefined, figures);
      }
    });
    worker.on('error', (err) => finish(err));
    // A last IPC message may still be on its way when 'exit' fires: give it a moment.
    worker.on('exit', (code, signal) => setTimeout(() => finish(new Error(`the load generator exited (${signal ?? code}) before reporting`)), 200));
    worker.send(job);
  });
}

const inspectorLine = /^\[([^\]]+)\] Debugger listening on (ws:\/\/\S+)$/;
/** What Node prints on stderr about its inspector: expected with --inspect, not a warning. */
const inspectorNoise = /^\[[^\]]+\] (Debugger listening on |For help, see: |Debugger attached\.|Debugger ending on |Waiting for the debugger to disconnect)/;

let release: (() => Promise<void>) | undefined;

/** Stops the stack and drops the database of a run cut short (Ctrl-C). */
export async function releaseAfterInterrupt(): Promise<void> {
  await release?.();
}

/**
 * Starts the local stack (2 V1 + 2 V2) with a database of its own, seeds users, runs the load from a child process,
 * follows the memory of every service, then stops everything and drops the database.
 */
export async function runLoadTest(options: LoadOptions, say: (line: string) => void): Promise<LoadReport> {
  const startedAt = new Date().toISOString();
  const server = databaseServer(process.env);
  const database = `canary_load_${process.pid}_${randomBytes(4).toString('hex')}`;
  const logLevel = process.env.LOG_LEVEL || 'warn';
  const tracing = !/^(false|0)$/i.test(process.env.AWS_XRAY_SDK_ENABLED ?? 'true');
  const inspectors = new Map<string, string>();
  const warnings = { count: 0, first: [] as string[] };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DB_NAME: database,
    LOG_LEVEL: logLevel,
    // Port 0: each service's inspector on a free loopback port, named in its first stderr line.
    ...(options.gc ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim() } : {}),
  };

  let stack: LocalStack | undefined;
  let released: Promise<void> | undefined;
  release = () =>
    (released ??= (async () => {
      await stack?.close();
      await withConnection(server, undefined, (c) => c.query(`DROP DATABASE IF EXISTS \`${database}\``));
      say(`database ${database} dropped`);
    })());

  try {
    say(`starting the local stack (V1 x2, V2 x2) with database ${database}`);
    stack = await startLocalStack({
      v1: 2,
      v2: 2,
      usermgmtPort: 0,
      notificationPort: 0,
      env,
      write: (line, stream) => {
        const inspector = inspectorLine.exec(line);
        if (inspector) inspectors.set(inspector[1]!, inspector[2]!);
        if (inspectorNoise.test(line)) return;
        if (stream !== 'stderr' && !/"level":(40|50|60)/.test(line)) return;
        warnings.count += 1;
        if (warnings.first.length < 20) warnings.first.push(line);
      },
    });
    const url = `http://${stack.host}:${stack.usermgmtPort}`;

    const usernames = Array.from({ length: options.users }, (_, i) => `seed${String(i + 1).padStart(5, '0')}`);
    await withConnection(server, database, (c) =>
      c.query('INSERT INTO users (username, password, enabled, role, email, firstname, lastname) VALUES ?', [
        usernames.map((name) => [name, unusableHash(), true, 'ROLE_USER', `${name}@seed.example.com`, 'Seed', 'User']),
      ]),
    );

    const services: WatchedService[] = [
      { name: 'user-management', pid: stack.usermgmtPid },
      ...stack.replicas().map((replica) => ({ name: replica.name, pid: replica.pid })),
    ].map((service) => ({ ...service, inspector: inspectors.get(service.name) }));
    if (options.gc) {
      const missing = services.filter((service) => !service.inspector).map((service) => service.name);
      if (missing.length > 0) throw new Error(`no inspector address from ${missing.join(', ')} (needed for --gc; run with --no-gc)`);
    }

    const job = { url, connections: options.connections, timeoutSeconds: options.timeoutSeconds, usernames };
    // Lazy set-up (JIT, connection pools, caches) happens here, so "before" and "after" compare steady states.
    if (options.warmupSeconds > 0) {
      say(`warm-up: ${options.connections} clients for ${options.warmupSeconds} s against ${url}`);
      const warmup = await runWorker({ ...job, durationSeconds: options.warmupSeconds, runTag: 'w' });
      if (warmup.ok2xx === 0) throw new Error('the warm-up got no successful answer');
    }
    const before = new Map<string, MemorySample>();
    for (const service of services) before.set(service.name, await sample(service, options.gc));

    say(`${options.connections} clients for ${options.durationSeconds} s against ${url}`);
    const peaks = watchPeaks(services);
    const runTag = randomBytes(3).toString('hex');
    const figures = await runWorker({ ...job, durationSeconds: options.durationSeconds, runTag });
    const peakRss = peaks.stop();

    // The outbox sends after the commit, in the background: time how long the account e-mails take to go.
    say('load done; waiting for the outbox to send every account e-mail');
    const loadEnded = performance.now();
    const pending = async (): Promise<number> =>
      withConnection(server, database, async (c) => {
        const [rows] = await c.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM notification_outbox WHERE status = 'pending'");
        return Number(rows[0]?.n);
      });
    let left = await pending();
    while (left > 0 && performance.now() - loadEnded < outboxDrainLimitMs) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      left = await pending();
    }
    const outboxDrainSeconds = Math.round((performance.now() - loadEnded) / 100) / 10;
    say(`outbox ${left === 0 ? `empty after ${outboxDrainSeconds} s` : `still holds ${left} e-mails`}; settling for ${options.settleSeconds} s`);
    await new Promise((resolve) => setTimeout(resolve, options.settleSeconds * 1000));
    const memory: ServiceMemory[] = [];
    for (const service of services) {
      const after = await sample(service, options.gc);
      memory.push({ name: service.name, pid: service.pid, before: before.get(service.name)!, peakRssBytes: Math.max(peakRss.get(service.name) ?? 0, after.rssBytes), after });
    }

    const tables = await withConnection(server, database, async (c) => {
      const [users] = await c.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM users WHERE username LIKE ?', [`l${runTag}%`]);
      const [outbox] = await c.query<mysql.RowDataPacket[]>('SELECT status, COUNT(*) AS n FROM notification_outbox GROUP BY status');
      return {
        createdUsers: Number(users[0]?.n),
        outbox: Object.fromEntries(outbox.map((row) => [String(row.status), Number(row.n)])),
        outboxDrainSeconds: left === 0 ? outboxDrainSeconds : undefined,
      };
    });

    const failures: string[] = [];
    if (figures.non2xx > 0) failures.push(`${figures.non2xx} non-2xx answers`);
    if (figures.errors > 0) failures.push(`${figures.errors} connection errors or timeouts`);
    if (figures.ok2xx === 0) failures.push('no successful answer at all');
    // Creates still in flight when the load stops are done by the server but never counted by the client.
    const answered = figures.byRoute['POST /usermgmt/user']?.statuses['200'] ?? 0;
    if (tables.createdUsers < answered || tables.createdUsers > figures.created) {
      failures.push(`${answered} creates answered 200 and ${figures.created} were sent, but the table holds ${tables.createdUsers} new users`);
    }
    if (left > 0) failures.push(`${left} account e-mails still pending ${outboxDrainLimitMs / 1000} s after the load`);

    return {
      options,
      startedAt,
      logLevel,
      tracing,
      figures,
      throughput: Math.round((figures.ok2xx / figures.durationSeconds) * 10) / 10,
      memory,
      database: tables,
      // A copy: stopping the stack below logs the interrupted sends of its own shutdown, which are not the load's.
      warnings: { count: warnings.count, first: [...warnings.first] },
      failures,
    };
  } finally {
    await release();
    release = undefined;
  }
}
