/** What the orchestrator asks the load worker to do. */
export interface LoadJob {
  url: string;
  connections: number;
  durationSeconds: number;
  timeoutSeconds: number;
  /** Existing users the single-user reads pick from. */
  usernames: string[];
  /** Makes the names of the users this run creates unique across runs. */
  runTag: string;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** Answers to one route of the mix. */
export interface RouteFigures {
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  /** Milliseconds from sending the request to its whole answer. */
  latencyMs: Percentiles;
}

export interface LoadFigures {
  durationSeconds: number;
  /** Answers received, whatever their status. */
  answers: number;
  ok2xx: number;
  non2xx: number;
  /** Connection errors and timeouts (autocannon counts timeouts among errors). */
  errors: number;
  timeouts: number;
  /** Latency of every answer, from autocannon's histogram (whole milliseconds). */
  latencyMs: Percentiles & { mean: number };
  byRoute: Record<string, RouteFigures>;
  /** `appversion` of the notification-xray answers: the canary split as user management saw it. */
  xrayVersions: Record<string, number>;
  /** Users the creates of this run asked for. */
  created: number;
}

export type WorkerMessage = ({ type: 'result' } & LoadFigures) | { type: 'failed'; message: string };
