import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ReadyMessage } from '../src/local-stack/ready-message.js';

export const stackEntry = fileURLToPath(new URL('../dist/local-stack/main.js', import.meta.url));

export interface StackProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with its ready message; rejects with its output if it exits first. */
  ready: Promise<ReadyMessage>;
  /** The pids of every process it started. */
  pids(): number[];
}

/** `node tools/dist/local-stack/main.js <args>` with an IPC channel, as a user would run it (plus IPC). */
export function runStack(args: string[], env: NodeJS.ProcessEnv): StackProcess {
  const child = fork(stackEntry, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  // Read continuously: a stack whose stdout pipe fills up would block.
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  let message: ReadyMessage | undefined;
  const ready = new Promise<ReadyMessage>((resolve, reject) => {
    child.on('message', (received: ReadyMessage) => {
      if (received.type !== 'ready') return;
      message = received;
      resolve(received);
    });
    void exited.then(({ code, signal }) => reject(new Error(`the stack exited (${code ?? signal}) before it was ready:\n${output}`)));
  });
  // A test that expects the stack to fail never awaits this.
  ready.catch(() => {});
  return {
    child,
    output: () => output,
    exited,
    ready,
    pids: () => (message ? [message.usermgmtPid, ...message.replicas.map((r) => r.pid)] : []),
  };
}

/**
 * Whether a process still runs. A zombie (dead, not yet reaped: on this machine PID 1 does not reap orphans) is
 * dead for this purpose.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
