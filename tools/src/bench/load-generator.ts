import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadFigures, LoadJob, WorkerMessage } from './load-protocol.js';
import { cpuSeconds, machineTicks } from './proc-stats.js';

/** A process whose CPU time is accounted during a measured run, under a role name such as `user-management`. */
export interface WatchedProcess {
  role: string;
  pid: number;
}

export interface LoadRun extends LoadFigures {
  /** 2xx responses per second of the measured run. */
  throughput: number;
  /** CPU used during the measured run, in cores (1 = one core busy the whole time). */
  cpu: {
    generator: number;
    /** This process: the in-process balancer (and an idle orchestrator). */
    orchestrator: number;
    byRole: Record<string, number>;
    /** Busy share of every core of the machine, whoever used it (other users of the machine included). */
    machine: number;
    /** Cores the machine has, to read the figures above against. */
    cores: number;
  };
}

const workerPath = fileURLToPath(new URL('./load-worker.js', import.meta.url));

interface Snapshot {
  at: number;
  self: NodeJS.CpuUsage;
  machine: ReturnType<typeof machineTicks>;
  processes: Map<string, number>;
}

function snapshot(watched: readonly WatchedProcess[]): Snapshot {
  const processes = new Map<string, number>();
  for (const { role, pid } of watched) processes.set(role, (processes.get(role) ?? 0) + (cpuSeconds(pid) ?? Number.NaN));
  return { at: performance.now(), self: process.cpuUsage(), machine: machineTicks(), processes };
}

function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/**
 * Runs autocannon in a child process against `job.url` and accounts the CPU time of every watched process over the
 * measured part of the run (the warm-up is not counted). Several processes may share a role: their times add up.
 */
export function runLoad(job: LoadJob, watched: readonly WatchedProcess[], onMeasuring?: () => void): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const worker = fork(workerPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let start: Snapshot | undefined;
    let settled = false;
    const limit = setTimeout(
      () => {
        worker.kill('SIGKILL');
        finish(new Error(`the load generator did not finish within ${job.warmupSeconds + job.durationSeconds + 60} s`));
      },
      (job.warmupSeconds + job.durationSeconds + 60) * 1000,
    );
    function finish(err: Error | undefined, run?: LoadRun): void {
      if (settled) return;
      settled = true;
      clearTimeout(limit);
      if (err) reject(err);
      else resolve(run as LoadRun);
    }
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'measuring') {
        start = snapshot(watched);
        onMeasuring?.();
        return;
      }
      if (message.type === 'failed') {
        finish(new Error(`the load generator failed: ${message.message}`));
        return;
      }
      const end = snapshot(watched);
      const begin = start ?? end;
      const wall = (end.at - begin.at) / 1000 || message.durationSeconds;
      const selfSeconds = (end.self.user - begin.self.user + end.self.system - begin.self.system) / 1e6;
      const byRole: Record<string, number> = {};
      for (const [role, seconds] of end.processes) byRole[role] = round((seconds - (begin.processes.get(role) ?? Number.NaN)) / wall);
      const { type: _type, ...figures } = message;
      finish(undefined, {
        ...figures,
        throughput: round(message.ok2xx / message.durationSeconds, 1),
        cpu: {
          generator: round(message.cpuSeconds / message.durationSeconds),
          orchestrator: round(selfSeconds / wall),
          byRole,
          machine: round(((end.machine.busy - begin.machine.busy) / (end.machine.total - begin.machine.total || 1)) * end.machine.cores),
          cores: end.machine.cores,
        },
      });
    });
    worker.on('error', (err) => finish(err));
    worker.on('exit', (code, signal) => {
      // A last IPC message may still be on its way when 'exit' fires: give it a moment.
      setTimeout(() => finish(new Error(`the load generator exited (${signal ?? code}) before reporting a result`)), 200);
    });
    worker.send(job);
  });
}
