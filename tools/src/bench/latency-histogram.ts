/**
 * Latencies of one scenario as counts per tenth of a millisecond: the load worker records every 2xx response, the
 * orchestrator adds up the histograms of a scenario's slices and reads percentiles off the sum (percentiles of
 * slices cannot be averaged into the percentile of their union).
 */
export type LatencyHistogram = Array<[tenthsOfMs: number, count: number]>;

export class LatencyRecorder {
  readonly #counts = new Map<number, number>();

  record(milliseconds: number): void {
    const bucket = Math.round(milliseconds * 10);
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + 1);
  }

  histogram(): LatencyHistogram {
    return [...this.#counts.entries()].sort((a, b) => a[0] - b[0]);
  }
}

export function mergeHistograms(histograms: readonly LatencyHistogram[]): LatencyHistogram {
  const counts = new Map<number, number>();
  for (const histogram of histograms) for (const [bucket, count] of histogram) counts.set(bucket, (counts.get(bucket) ?? 0) + count);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]);
}

export interface LatencySummary {
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

/** p50, p99, mean and max in milliseconds (one decimal); zeros for an empty histogram. */
export function summarize(histogram: LatencyHistogram): LatencySummary {
  const total = histogram.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return { p50: 0, p99: 0, mean: 0, max: 0 };
  const percentile = (p: number): number => {
    // The smallest latency at or below which p of the responses fall (nearest rank).
    const rank = Math.ceil(p * total);
    let seen = 0;
    for (const [bucket, count] of histogram) {
      seen += count;
      if (seen >= rank) return bucket / 10;
    }
    return (histogram.at(-1)?.[0] ?? 0) / 10;
  };
  const sum = histogram.reduce((acc, [bucket, count]) => acc + bucket * count, 0);
  return {
    p50: percentile(0.5),
    p99: percentile(0.99),
    mean: Math.round(sum / total) / 10,
    max: (histogram.at(-1)?.[0] ?? 0) / 10,
  };
}
