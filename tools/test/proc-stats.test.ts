import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { machineBusyShare, synRetransmits, waitForQuietMachine } from '../src/bench/proc-stats.js';

let helper: ReturnType<typeof spawn> | undefined;

afterEach(async () => {
  if (helper && helper.exitCode === null) {
    helper.kill('SIGKILL');
    await once(helper, 'exit');
  }
  helper = undefined;
});

/** A process that keeps one core busy until killed, once it has started spinning. */
async function spinOneCore(): Promise<void> {
  helper = spawn(process.execPath, ['-e', 'process.stdout.write("go\\n"); for (;;) {}'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await once(helper.stdout!, 'data');
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

describe('SYN retransmissions', () => {
  it('counts the SYN the kernel resends when a listener does not take the connection', async () => {
    // A listener whose event loop is blocked never accepts: once its queue is full the kernel drops new SYNs, and
    // the connecting side resends them after its 1 s timer, which is what a start-up poll can meet.
    const listener = spawn(
      process.execPath,
      ['-e', `const s = require('node:net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => { process.stdout.write(s.address().port + '\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000); process.exit(0); });`],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    helper = listener;
    const [chunk] = (await once(listener.stdout!, 'data')) as [Buffer];
    const port = Number(chunk.toString().trim());
    const before = synRetransmits();
    expect(before).toBeTypeOf('number');
    const sockets = Array.from({ length: 4 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((resolve) => setTimeout(resolve, 1600));
    for (const socket of sockets) socket.destroy();
    expect(synRetransmits()! - before!).toBeGreaterThanOrEqual(1);
  });
});
