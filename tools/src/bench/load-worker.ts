import autocannon from 'autocannon';
import { sendToParent, serveOneJob } from '../child-job.js';
import { LatencyRecorder, summarize } from './latency-histogram.js';
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
  // autocannon's own percentiles are whole milliseconds: every 2xx latency is kept here, to a tenth.
  const latencies = new LatencyRecorder();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ ...common, duration: job.durationSeconds }, (err, finished) => (err ? reject(err) : resolve(finished)));
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.record(responseTime);
    });
  });
  const cpu = process.cpuUsage(before);
  const histogram = latencies.histogram();
  await send({
    type: 'result',
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    latencyMs: summarize(histogram),
    latencyHistogram: histogram,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  });
}

serveOneJob(run);
