import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseEnv, testDatabaseSettings } from '@canary/testkit';
import { isRunning, runStack, until, type StackProcess } from './stack-process.js';

// A closed stdout (`npm start | head -1`) and a stack killed while its children start: real processes throughout.
// The stack creates this database itself.
const database = `canary_stackout_${process.pid}_${randomBytes(4).toString('hex')}`;
const settings = testDatabaseSettings();
const stacks: StackProcess[] = [];
/** Every process a stack under test started, so that none outlives this file even when a test fails. */
const children = new Set<number>();

afterAll(async () => {
  for (const stack of stacks) {
    if (stack.child.exitCode === null && stack.child.signalCode === null) stack.child.kill('SIGKILL');
    await stack.exited;
  }
  for (const pid of children) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  const connection = await mysql.createConnection({ ...settings, connectTimeout: 5000 });
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
  } finally {
    await connection.end();
  }
});

function start(): StackProcess {
  const stack = runStack(['--v1', '1', '--v2', '1', '--port', '0', '--notification-port', '0'], {
    ...process.env,
    ...databaseEnv(settings, database),
    AWS_XRAY_SDK_ENABLED: 'false',
  });
  stacks.push(stack);
  return stack;
}

/** The pids whose parent is `parent`, from /proc. */
async function childrenOf(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) pids.push(Number(name));
    } catch {
      // It ended while being read.
    }
  }
  return pids;
}

/** Records the stack's children every 20 ms until it exits (they are re-parented once it is gone). */
function watchChildren(stack: StackProcess): Set<number> {
  const seen = new Set<number>();
  let exited = false;
  void stack.exited.then(() => (exited = true));
  void (async () => {
    while (!exited) {
      for (const pid of await childrenOf(stack.child.pid!)) {
        seen.add(pid);
        children.add(pid);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return seen;
}

describe('local stack whose stdout is closed (npm start | head)', () => {
  it('stops cleanly with exit code 0 when its stdout closes during start-up, leaving no child behind', async () => {
    const stack = start();
    const seen = watchChildren(stack);
    let stderr = '';
    stack.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // As `head -1`: read the first line ("[stack] database ... created"), then close the pipe while the replicas start.
    stack.child.stdout!.once('data', () => stack.child.stdout!.destroy());

    expect(await stack.exited).toEqual({ code: 0, signal: null });
    expect(stderr).not.toContain("Unhandled 'error'");
    expect(stderr).toContain('[stack] stdout closed (EPIPE): stopping');
    // Both replicas and user management: the stack finished starting, then stopped them all before exiting.
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect([...seen].filter(isRunning)).toEqual([]);
  }, 120_000);

  it('stops cleanly with exit code 0 when its stdout closes after start-up, leaving no child behind', async () => {
    const stack = start();
    const ready = await stack.ready;
    const pids = stack.pids();
    for (const pid of pids) children.add(pid);
    expect(pids).toHaveLength(3);
    let stderr = '';
    stack.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    stack.child.stdout!.destroy();

    // The stack learns that the pipe is closed when it next writes: a request makes user management log a line.
    let exited = false;
    void stack.exited.then(() => (exited = true));
    await until(async () => {
      await fetch(`http://127.0.0.1:${ready.usermgmtPort}/usermgmt/no-such-route`).catch(() => {});
      return exited;
    }, 'the stack to stop after its stdout closed');
    expect(await stack.exited).toEqual({ code: 0, signal: null });
    expect(stderr).not.toContain("Unhandled 'error'");
    expect(stderr).toContain('[stack] stdout closed (EPIPE): stopping');
    expect(pids.filter(isRunning)).toEqual([]);
  }, 120_000);
});

describe('children of a stack that dies (SIGKILL)', () => {
  it('end while they are still starting', async () => {
    const stack = start();
    const seen = watchChildren(stack);
    // Both replicas spawned, neither listening yet: the state in which they used to survive, stuck on their stdout.
    await until(() => seen.size >= 2, 'both replicas to be spawned', 60_000);
    stack.child.kill('SIGKILL');
    await stack.exited;
    await until(() => ![...seen].some(isRunning), `pids ${[...seen].join(', ')} to end`, 10_000);
  }, 120_000);

  it('end while their main thread is blocked retrying a write to the dead stack (as pino does on exit)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'parent-watch-'));
    try {
      const dist = fileURLToPath(new URL('../dist/local-stack/', import.meta.url));
      const childScript = path.join(dir, 'child.mjs');
      const parentScript = path.join(dir, 'parent.mjs');
      // sonic-boom 4's flushSync: retries a failing synchronous write every 100 ms, whatever the error.
      await writeFile(
        childScript,
        `import { writeSync } from 'node:fs';
const pause = new Int32Array(new SharedArrayBuffer(4));
process.send({ type: 'listening', port: 1 }, () => {
  for (;;) {
    try { writeSync(1, 'blocked\\n'); } catch {}
    Atomics.wait(pause, 0, 0, 100);
  }
});
`,
      );
      // A stand-in for the stack that starts the child the way the stack does.
      await writeFile(
        parentScript,
        `import { startServiceProcess } from ${JSON.stringify(path.join(dist, 'service-process.js'))};
let firstLine;
const blocked = new Promise((resolve) => (firstLine = resolve));
const child = await startServiceProcess({
  name: 'blocked', script: ${JSON.stringify(childScript)}, env: process.env, preload: ${JSON.stringify(path.join(dist, 'parent-watch.js'))},
  listenTimeoutMs: 20000, write: () => firstLine(),
});
await blocked;
process.send({ pid: child.pid });
`,
      );
      const parent = fork(parentScript, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const exited = once(parent, 'exit');
      try {
        const [{ pid }] = (await once(parent, 'message')) as [{ pid: number }];
        children.add(pid);
        expect(isRunning(pid)).toBe(true);
        parent.kill('SIGKILL');
        await exited;
        await until(() => !isRunning(pid), `the blocked child ${pid} to end`, 10_000);
      } finally {
        parent.kill('SIGKILL');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
