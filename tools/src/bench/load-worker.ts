import autocannon from 'autocannon';
import { sendToParent, serveOneJob } from '../child-job.js';
import type { LoadJob, WorkerMessage } from './load-protocol.js';

/**
 * The load generator's own process: autocannon shares no event loop with the orchestrator or the balancer it runs
 * beside, and this process's CPU time is its own (measured with process.cpuUsage around the measured run).
 */
function send(message: WorkerMessage): Promise<void> {
  return sendToParent(message);
}

async function run(job: LoadJob): Promise<void> {
  const common = {
    url: job.url,
    connections: job.connections,
    pipelining: 1,
    timeout: job.timeoutSeconds,
    ...(job.overallRate ? { overallRate: job.overallRate } : {}),
  };
  if (job.warmupSeconds > 0) await autocannon({ ...common, duration: job.warmupSeconds });
  await send({ type: 'measuring' });
  const before = process.cpuUsage();
  const result = await autocannon({ ...common, duration: job.durationSeconds });
  const cpu = process.cpuUsage(before);
  await send({
    type: 'result',
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average, max: result.latency.max },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  });
}

serveOneJob(run);
