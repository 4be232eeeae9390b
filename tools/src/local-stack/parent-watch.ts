/**
 * Preloaded (`node --import`) into every process the local stack starts. When the stack dies without stopping its
 * children (SIGKILL, a crash), each child kills itself, so no process is left behind. Two ways, as a child can be
 * idle or stuck writing:
 *
 * - The IPC channel closes. It also closes at the end of the child's own graceful shutdown (the service
 *   disconnects); what tells the two apart is that a dead parent's children are re-parented. The kernel closes the
 *   channel slightly before it re-parents, so the check is repeated for a while. The stack passes its pid
 *   (LOCAL_STACK_PID): it may already have died, and the child been re-parented, when this preload runs.
 * - A synchronous write to stdout or stderr fails with EPIPE: the pipe's reader, the stack, is gone. pino's final
 *   flush on exit (sonic-boom 4 flushSync) retries a failing write every 100 ms forever, so a child whose start
 *   failed because the stack died (its `process.send` refused) would block its main thread there, where no timer
 *   or signal handler runs again. Failing that write is the one thing such a child still does.
 *
 * SIGKILL rather than a graceful SIGTERM: a graceful exit would hang in that flush. Nothing can reach a child of a
 * dead stack through the balancer anyway, and MySQL rolls back what a dropped connection left unfinished. No
 * worker thread watches instead: it would add megabytes to every service the benchmarks measure.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const killSelf = (): void => {
  process.kill(process.pid, 'SIGKILL');
};

if (process.send) {
  const stack = Number(process.env.LOCAL_STACK_PID) || process.ppid;
  delete process.env.LOCAL_STACK_PID;
  process.once('disconnect', () => {
    let checks = 0;
    const timer = setInterval(() => {
      checks += 1;
      if (process.ppid !== stack) killSelf();
      else if (checks >= 40) clearInterval(timer);
    }, 50);
    // A process that is otherwise done is not kept alive by this check, nor by the channel below.
    timer.unref();
  });
  process.channel?.unref();

  const writeSync = fs.writeSync;
  fs.writeSync = function writeSyncOrDie(this: unknown, fd: number, ...rest: unknown[]): number {
    try {
      return Reflect.apply(writeSync, this, [fd, ...rest]) as number;
    } catch (err) {
      if ((fd === 1 || fd === 2) && (err as NodeJS.ErrnoException).code === 'EPIPE') killSelf();
      throw err;
    }
  } as typeof fs.writeSync;
  // `import { writeSync } from 'node:fs'` sees the change too, not only `fs.writeSync`.
  syncBuiltinESMExports();
}

export {};
