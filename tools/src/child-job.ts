/**
 * A child process that does one job for its parent over IPC: the load generators of `npm run bench` and
 * `npm run load` run this way, so autocannon shares no event loop (nor CPU accounting) with the orchestrator.
 */
export function sendToParent(message: object): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('this worker must be started with an IPC channel'));
    process.send(message, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

/** Runs `run` on the first message from the parent, reports a failure as `{type:'failed',message}`, then leaves. */
export function serveOneJob<Job>(run: (job: Job) => Promise<void>): void {
  // The orchestrator is gone (Ctrl-C, crash): stop generating load at once.
  const orphaned = (): never => process.exit(1);
  process.on('disconnect', orphaned);

  process.once('message', (job: Job) => {
    run(job).then(
      () => {
        process.off('disconnect', orphaned);
        process.disconnect();
      },
      async (err: unknown) => {
        await sendToParent({ type: 'failed', message: err instanceof Error ? err.message : String(err) }).catch(() => undefined);
        process.exit(1);
      },
    );
  });
}
