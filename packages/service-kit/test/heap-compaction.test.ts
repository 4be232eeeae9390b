import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('fixtures/heap-compaction.mjs', import.meta.url));
const MB = 1024 * 1024;

/** Runs the fixture in a process of its own (its resident set is then its own) and reads its one JSON line. */
async function run<T>(mode: 'compact' | 'idle' | 'quiet'): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, [fixture, mode], { timeout: 30_000 });
  return JSON.parse(stdout) as T;
}

interface Compaction {
  at: number;
  rssBefore: number;
  rssAfter: number;
}

describe('heap compaction', () => {
  it('gives the memory of dropped objects back to the system', async () => {
    const { held, after } = await run<{ held: number; after: number }>('compact');
    expect(held - after).toBeGreaterThan(40 * MB);
  });

  it('compacts once, after the event loop has been idle long enough, and not while it is busy', async () => {
    const { busyUntil, events, peak, end } = await run<{ busyUntil: number; events: Compaction[]; peak: number; end: number }>('idle');
    expect(events).toHaveLength(1);
    // idleMs is 400 and the loop is looked at every 50 ms: never before 400 ms of quiet, and soon after.
    const quiet = events[0]!.at - busyUntil;
    expect(quiet).toBeGreaterThanOrEqual(400);
    expect(quiet).toBeLessThan(1500);
    // However much V8 had already collected by itself, the process ends far below what the busy second held.
    expect(peak - end).toBeGreaterThan(40 * MB);
  });

  it('leaves a process alone whose memory has not grown', async () => {
    const { events } = await run<{ events: Compaction[] }>('quiet');
    expect(events).toEqual([]);
  });
});
