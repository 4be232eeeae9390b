import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { machineBusyShare, waitForQuietMachine } from '../src/bench/proc-stats.js';

let spinner: ReturnType<typeof spawn> | undefined;

afterEach(async () => {
  if (spinner && spinner.exitCode === null) {
    spinner.kill('SIGKILL');
    await once(spinner, 'exit');
  }
  spinner = undefined;
});

/** A process that keeps one core busy until killed, once it has started spinning. */
async function spinOneCore(): Promise<void> {
  spinner = spawn(process.execPath, ['-e', 'process.stdout.write("go\\n"); for (;;) {}'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await once(spinner.stdout!, 'data');
}

describe('machine busy share', () => {
  it('sees one core kept busy by another process', async () => {
    await spinOneCore();
    const share = await machineBusyShare(400);
    expect(share).toBeGreaterThanOrEqual(0.8 / os.availableParallelism());
    expect(share).toBeLessThanOrEqual(1);
  });

  it('gives up waiting for a quiet machine after maxMs, and says it is not quiet', async () => {
    await spinOneCore();
    const threshold = 0.5 / os.availableParallelism();
    const wait = await waitForQuietMachine({ threshold, windowMs: 200, maxMs: 600 });
    expect(wait.quiet).toBe(false);
    expect(wait.busyShare).toBeGreaterThanOrEqual(threshold);
    expect(wait.waitedMs).toBeGreaterThanOrEqual(600);
    expect(wait.waitedMs).toBeLessThan(600 + 1000);
  });

  it('stops at the first quiet window', async () => {
    const wait = await waitForQuietMachine({ threshold: 1.01, windowMs: 100, maxMs: 5000 });
    expect(wait.quiet).toBe(true);
    expect(wait.waitedMs).toBeLessThan(1000);
  });
});
