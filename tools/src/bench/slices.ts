import type { ScenarioRun } from './bench-results.js';
import { mergeHistograms, summarize } from './latency-histogram.js';
import type { SinkReport } from './xray-sink-protocol.js';

function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Datagrams sent to the sink per response: those it read and those its full socket dropped. */
export function segmentsPerResponse(sink: Pick<SinkReport, 'datagrams' | 'dropped'>, responses: number): number {
  return round((sink.datagrams + sink.dropped) / Math.max(1, responses), 2);
}

/**
 * One run of a scenario from its slices, which were interleaved with the other scenarios' so that a change in the
 * machine's speed reaches every scenario alike: counts and times added up, CPU shares weighted by each slice's
 * time, latency percentiles read off all the slices' responses together.
 */
export function joinSlices(slices: readonly ScenarioRun[]): ScenarioRun {
  const [first] = slices;
  if (!first) throw new Error('joinSlices() needs at least one slice');
  const sum = (of: (slice: ScenarioRun) => number): number => slices.reduce((total, slice) => total + of(slice), 0);
  const duration = sum((slice) => slice.durationSeconds);
  const weighted = (of: (slice: ScenarioRun) => number): number => round(sum((slice) => of(slice) * slice.durationSeconds) / duration);
  const roles = new Set(slices.flatMap((slice) => Object.keys(slice.cpu.byRole)));
  const histogram = mergeHistograms(slices.map((slice) => slice.latencyHistogram));
  const ok2xx = sum((slice) => slice.ok2xx);
  const traced = slices.filter((slice) => slice.trace);
  const joined: ScenarioRun = {
    ok2xx,
    non2xx: sum((slice) => slice.non2xx),
    errors: sum((slice) => slice.errors),
    timeouts: sum((slice) => slice.timeouts),
    durationSeconds: round(duration),
    latencyMs: summarize(histogram),
    latencyHistogram: histogram,
    cpuSeconds: round(sum((slice) => slice.cpuSeconds)),
    throughput: round(ok2xx / duration, 1),
    cpu: {
      generator: weighted((slice) => slice.cpu.generator),
      orchestrator: weighted((slice) => slice.cpu.orchestrator),
      byRole: Object.fromEntries([...roles].map((role) => [role, weighted((slice) => slice.cpu.byRole[role] ?? 0)])),
      machine: weighted((slice) => slice.cpu.machine),
      cores: first.cpu.cores,
    },
    slices: slices.length,
  };
  if (traced.length > 0) {
    const datagrams = traced.reduce((total, slice) => total + (slice.trace?.sink.datagrams ?? 0), 0);
    const dropped = traced.reduce((total, slice) => total + (slice.trace?.sink.dropped ?? 0), 0);
    const responses = traced.reduce((total, slice) => total + slice.ok2xx + slice.non2xx, 0);
    const sinks = traced.map((slice) => slice.trace!.sink);
    const names: Record<string, number> = {};
    for (const sink of sinks) for (const [name, count] of Object.entries(sink.names)) names[name] = (names[name] ?? 0) + count;
    joined.trace = {
      segmentsPerRequest: segmentsPerResponse({ datagrams, dropped }, responses),
      sink: {
        datagrams,
        bytes: sinks.reduce((total, sink) => total + sink.bytes, 0),
        dropped,
        parsed: sinks.reduce((total, sink) => total + sink.parsed, 0),
        malformed: sinks.reduce((total, sink) => total + sink.malformed, 0),
        names,
      },
    };
  }
  return joined;
}
