import autocannon from 'autocannon';
import { sendToParent, serveOneJob } from '../child-job.js';
import type { LoadJob, WorkerMessage } from './load-protocol.js';
import { requestMix } from './request-mix.js';

/**
 * The load generator's own process, so autocannon shares no event loop with the balancer, which runs in the
 * orchestrator (the local stack's process).
 */
function send(message: WorkerMessage): Promise<void> {
  return sendToParent(message);
}

async function run(job: LoadJob): Promise<void> {
  const mix = requestMix(job.usernames, job.runTag);
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    pipelining: 1,
    duration: job.durationSeconds,
    timeout: job.timeoutSeconds,
    requests: mix.requests,
  });
  await send({
    type: 'result',
    durationSeconds: result.duration,
    answers: result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'],
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
    ...mix.figures(),
  });
}

serveOneJob(run);
