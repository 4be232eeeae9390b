import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Path of a compiled entry beside this file (`tools/dist/bench/<name>.js`). */
export function entryPath(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

/** Starts a Node entry with an IPC channel; its output goes to ours only when `inheritOutput` is set. */
export function forkEntry(path: string, env: NodeJS.ProcessEnv, inheritOutput = false): ChildProcess {
  return fork(path, [], {
    env,
    stdio: ['ignore', inheritOutput ? 'inherit' : 'ignore', 'inherit', 'ipc'],
  });
}

/** Resolves with the first IPC message `accept` returns a value for; rejects if the child exits or time runs out. */
export function waitForMessage<T>(child: ChildProcess, accept: (message: unknown) => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    function onMessage(message: unknown): void {
      const value = accept(message);
      if (value !== undefined) done(undefined, value);
    }
    function onExit(code: number | null, signal: NodeJS.Signals | null): void {
      done(new Error(`${what}: the process exited (${signal ?? code})`));
    }
    function done(err: Error | undefined, value?: T): void {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value as T);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
