/**
 * Preloaded (`node --import`) into every process the local stack starts. When the stack dies without stopping its
 * children (SIGKILL, a crash), their IPC channel closes and each child kills itself, so no process is left behind.
 *
 * SIGKILL rather than a graceful SIGTERM: the child's stdout is a pipe to the dead stack, and pino's final
 * synchronous flush (sonic-boom 4 flushSync) retries a write failing with EPIPE forever, so a graceful exit hangs.
 * Nothing can reach a child of a dead stack through the balancer anyway, and MySQL rolls back what a dropped
 * connection left unfinished.
 *
 * The channel also closes at the end of the child's own graceful shutdown (the service disconnects). What tells
 * the two apart is that a dead parent's children are re-parented; the kernel closes the dead parent's end of the
 * channel slightly before it re-parents, so the check is repeated for a while.
 */
if (process.send) {
  const parent = process.ppid;
  process.once('disconnect', () => {
    let checks = 0;
    const timer = setInterval(() => {
      checks += 1;
      if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
      else if (checks >= 40) clearInterval(timer);
    }, 50);
    // A process that is otherwise done is not kept alive by this check, nor by the channel below.
    timer.unref();
  });
  process.channel?.unref();
}

export {};
