import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

let clockTicks: number | undefined;

/** Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux we run on, but ask). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Resident memory of a live process in bytes (VmRSS of /proc/<pid>/status). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(match[1]) * 1024;
}

/** CPU time (user + system) a live process has used so far, in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / ticksPerSecond();
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  platform: string;
  /** 1, 5 and 15 minute load averages when the bench started and when it ended. */
  loadAverageStart: number[];
  loadAverageEnd?: number[];
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match?.[1]) cpuModel = match[1].trim();
  } catch {
    // Not Linux: keep what os.cpus() said.
  }
  return {
    cores: os.availableParallelism(),
    cpuModel,
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAverageStart: os.loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

/** The process listening on a local TCP port (the database server, for its CPU time); undefined if not visible. */
export function listeningPid(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, state 0A is LISTEN, the inode is the tenth field.
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (match && inodes.has(match[1] as string)) return Number(entry);
      } catch {
        // The descriptor closed while we looked.
      }
    }
  }
  return undefined;
}

/** Busy and total jiffies of all cores together, from the first line of /proc/stat. */
export function machineTicks(): { busy: number; total: number; cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  const values = (lines[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const cores = lines.filter((line) => /^cpu\d+ /.test(line)).length;
  return { busy: total - idle, total, cores };
}

/** Share of all cores' time spent busy over the next `windowMs` (0 to 1), whichever processes used it. */
export async function machineBusyShare(windowMs: number): Promise<number> {
  const before = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const after = machineTicks();
  const total = after.total - before.total;
  return total > 0 ? Math.min(1, Math.max(0, (after.busy - before.busy) / total)) : 0;
}

export interface QuietWait {
  waitedMs: number;
  /** Busy share of the last window measured. */
  busyShare: number;
  quiet: boolean;
}

/**
 * Waits until one window of `windowMs` finds the machine busy less than `threshold` of its cores, for at most `maxMs`:
 * processes of the bench's last phase may still be exiting, and a start-up timed meanwhile measures them too.
 */
export async function waitForQuietMachine({ threshold = 0.2, windowMs = 250, maxMs = 10_000 } = {}): Promise<QuietWait> {
  const started = performance.now();
  for (;;) {
    const busyShare = await machineBusyShare(windowMs);
    const waitedMs = Math.round(performance.now() - started);
    if (busyShare < threshold || waitedMs >= maxMs) return { waitedMs, busyShare: Math.round(busyShare * 100) / 100, quiet: busyShare < threshold };
  }
}

/**
 * SYNs this machine's TCP stack has resent since boot (`TcpExt: TCPSynRetrans` of /proc/net/netstat), undefined
 * where that is not readable. A connection whose first SYN went unanswered waits the kernel's first retransmission
 * timeout, 1 s, so a readiness poll that meets one adds a second to the start-up it times.
 */
export function synRetransmits(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/netstat', 'utf8');
  } catch {
    return undefined;
  }
  // Pairs of lines: "TcpExt: <names>" then "TcpExt: <values>".
  const lines = text.split('\n').filter((line) => line.startsWith('TcpExt:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1);
  const index = names.indexOf('TCPSynRetrans');
  const value = index >= 0 ? Number(values[index]) : Number.NaN;
  return Number.isFinite(value) ? value : undefined;
}
