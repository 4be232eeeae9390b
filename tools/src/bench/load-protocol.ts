import type { LatencyHistogram } from './latency-histogram.js';

/** What the orchestrator asks the load worker to do: a warm-up that is thrown away, then the measured run. */
export interface LoadJob {
  url: string;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** A request without an answer after this many seconds counts as an error. */
  timeoutSeconds: number;
  /** Requests per second over all connections; unset sends as fast as the server answers. */
  overallRate?: number;
}

export interface LoadFigures {
  /** Responses with a 2xx status; only these count as throughput. */
  ok2xx: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  timeouts: number;
  durationSeconds: number;
  /** Latency of 2xx responses, in milliseconds. */
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  /** The same as counts per tenth of a millisecond, so that several runs can be added up. */
  latencyHistogram: LatencyHistogram;
  /** CPU time the load generator's process used during the measured run. */
  cpuSeconds: number;
}

export type WorkerMessage = { type: 'measuring' } | ({ type: 'result' } & LoadFigures) | { type: 'failed'; message: string };
