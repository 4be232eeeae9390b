import { tracingLabel, type BenchResults, type CpuProfileFigures, type ScenarioResult } from './bench-results.js';
import { systemCores } from './cpu-accounting.js';
import type { Spread } from './statistics.js';
import type { SinkReport } from './xray-sink-protocol.js';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function figure(value: number, digits: number): string {
  return digits === 0 ? integer.format(value) : value.toFixed(digits);
}

/** `median (min–max)`, or the single value when there was one run. */
export function formatSpread(s: Spread, digits = 0, unit = ''): string {
  const median = `${figure(s.median, digits)}${unit}`;
  return s.runs.length === 1 || s.min === s.max ? median : `${median} (${figure(s.min, digits)}–${figure(s.max, digits)}${unit})`;
}

function percent(s: Spread): Spread {
  const scale = (n: number): number => n * 100;
  return { median: scale(s.median), min: scale(s.min), max: scale(s.max), runs: s.runs.map(scale) };
}

function signed(value: number): string {
  const rounded = Math.round(value);
  return rounded > 0 ? `+${rounded}` : `${rounded === 0 ? 0 : rounded}`;
}

/** The share of the datagrams sent to the sink that its full socket dropped, as a percentage. */
export function dropShare(sink: Pick<SinkReport, 'datagrams' | 'dropped'>): string {
  const sent = sink.datagrams + sink.dropped;
  return `${sent === 0 ? 0 : Math.round((sink.dropped / sent) * 1000) / 10}%`;
}

function routeName(route: 'xray' | 'users'): string {
  return route === 'xray' ? '/usermgmt/notification-xray' : '/usermgmt/users';
}

function verdict(met: boolean): string {
  return met ? 'met' : '**missed**';
}

/** Cores busy with something this bench did not start or watch (another user of the machine), median over the runs. */
function otherCores(scenario: ScenarioResult): number {
  return median(
    scenario.runs.map((run) => {
      const ours = Object.values(run.cpu.byRole).reduce((sum, cores) => sum + cores, run.cpu.orchestrator + run.cpu.generator);
      return Math.max(0, run.cpu.machine - ours);
    }),
  );
}

/** Cores busy in the system under test (its services and the in-process balancer), median over the runs. */
function serverCores(scenario: ScenarioResult): number {
  return median(scenario.runs.map(systemCores));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** CPU milliseconds per 2xx response of the processes holding `roles` (median over the runs). */
function cpuPerRequest(scenario: ScenarioResult, roles: string[], includeOrchestrator = false): string {
  const values = scenario.runs.map((run) => {
    const cores = roles.reduce((sum, role) => sum + (run.cpu.byRole[role] ?? 0), includeOrchestrator ? run.cpu.orchestrator : 0);
    return (cores * run.durationSeconds * 1000) / Math.max(1, run.ok2xx);
  });
  return median(values).toFixed(3);
}

/** One table per service: CPU microseconds per request by category, one column per profiled run. */
export function formatProfiles(profiles: readonly CpuProfileFigures[], rows = 12): string[] {
  const lines: string[] = [];
  for (const service of ['user-management', 'baseline-front', 'notification', 'baseline-back']) {
    const columns = profiles.filter((p) => p.service === service);
    if (columns.length === 0) continue;
    const weight = new Map<string, number>();
    for (const column of columns) {
      for (const { category, microsPerRequest } of column.categories) weight.set(category, Math.max(weight.get(category) ?? 0, microsPerRequest));
    }
    const shown = [...weight.entries()].sort((a, b) => b[1] - a[1]).slice(0, rows).map(([category]) => category);
    const cell = (column: CpuProfileFigures, category: string): number => column.categories.find((c) => c.category === category)?.microsPerRequest ?? 0;
    lines.push(
      '',
      `| ${service}: CPU µs per request, from a profile | ${columns.map((c) => `${c.route === 'xray' ? '/notification-xray' : '/users'}${c.tracing === 'none' ? '' : `, ${tracingLabel[c.tracing]}`}`).join(' | ')} |`,
      `|---|${columns.map(() => '---').join('|')}|`,
    );
    for (const category of shown) lines.push(`| ${category} | ${columns.map((c) => cell(c, category).toFixed(0)).join(' | ')} |`);
    lines.push(
      `| everything else | ${columns.map((c) => (c.microsPerRequest - shown.reduce((sum, category) => sum + cell(c, category), 0)).toFixed(0)).join(' | ')} |`,
      `| **total** (CPU time from /proc) | ${columns.map((c) => `**${c.microsPerRequest.toFixed(0)}**`).join(' | ')} |`,
      `| req/s while profiled | ${columns.map((c) => integer.format(c.throughput)).join(' | ')} |`,
    );
  }
  lines.push(...formatTracingDelta(profiles));
  return lines;
}

/** What tracing adds per request, by category: profiled CPU µs with every request sampled minus with tracing off. */
export function formatTracingDelta(profiles: readonly CpuProfileFigures[], rows = 8): string[] {
  const pairs = profiles.flatMap((on) => {
    const off = profiles.find((p) => p.tracing === 'off' && p.service === on.service && p.route === on.route);
    return on.tracing !== 'off' && on.tracing !== 'none' && off ? [{ on, off }] : [];
  });
  if (pairs.length === 0) return [];
  const lines = ['', '| What tracing adds (CPU µs per request, on − off, same request rate) | category: added µs |', '|---|---|'];
  for (const { on, off } of pairs) {
    const categories = new Set([...on.categories, ...off.categories].map((c) => c.category));
    const of = (figures: CpuProfileFigures, category: string): number => figures.categories.find((c) => c.category === category)?.microsPerRequest ?? 0;
    const deltas = [...categories].map((category) => ({ category, added: of(on, category) - of(off, category) })).sort((a, b) => b.added - a.added);
    const top = deltas.slice(0, rows).map((d) => `${d.category}: ${signed(d.added)}`);
    lines.push(
      `| ${on.service} on ${on.route === 'xray' ? '/notification-xray' : '/users'}, ${on.tracing === 'none' ? '' : tracingLabel[on.tracing]}: **${signed(on.microsPerRequest - off.microsPerRequest)}** ` +
        `(${off.microsPerRequest.toFixed(0)} → ${on.microsPerRequest.toFixed(0)}) | ${top.join('; ')} |`,
    );
  }
  return lines;
}

/** The markdown printed at the end of a run and pasted into docs/benchmarks.md. */
export function formatReport(results: BenchResults): string {
  const { settings, machine, goals } = results;
  const lines: string[] = [];
  lines.push(
    `Machine: ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB, Node ${machine.node}; ` +
      `load average ${machine.loadAverageStart.join(' ')} at the start, ${(machine.loadAverageEnd ?? []).join(' ')} at the end.`,
    `Settings: ${settings.runs} run(s); in each, every system warmed up for ${settings.warmupSeconds} s, then every scenario measured for ` +
      `${settings.durationSeconds} s in ${settings.slices} slice(s) taken in turn with the other scenarios', ` +
      `each counted after ${settings.leadInSeconds} s of load, ` +
      `${settings.connections} connections, ${settings.v1} V1 + ${settings.v2} V2, ${settings.users} users, ` +
      `LOG_LEVEL=${settings.logLevel}, connection policy ${settings.policy}` +
      `, every server on ${settings.allocator === 'jemalloc' ? 'jemalloc' : "glibc's malloc"}` +
      `${settings.nodeOptions ? `, our services with NODE_OPTIONS="${settings.nodeOptions}"` : ''}${settings.quick ? ' (--quick: the figures mean nothing)' : ''}. ` +
      'Figures are the median of the runs, (min–max) in brackets; a goal is judged on the median.',
    '',
    '| Scenario | Throughput (req/s) | p50 (ms) | p99 (ms) | Failed | CPU cores: load generator / servers / other processes on the machine |',
    '|---|---|---|---|---|---|',
  );
  for (const s of results.scenarios) {
    lines.push(
      `| ${s.label} | ${formatSpread(s.throughput)} | ${formatSpread(s.p50Ms)} | ${formatSpread(s.p99Ms)} | ${s.failed} | ` +
        `${s.generatorCpu.median.toFixed(2)} / ${serverCores(s).toFixed(2)} / ${otherCores(s).toFixed(2)} |`,
    );
  }

  lines.push(
    '',
    '| CPU ms per response | front / user management | notification (all replicas) | balancer (in the bench process) | load generator | X-Ray sink | database server |',
    '|---|---|---|---|---|---|---|',
  );
  for (const s of results.scenarios) {
    if (s.system === 'trivial') continue;
    const generator = median(s.runs.map((run) => (run.cpuSeconds * 1000) / Math.max(1, run.ok2xx))).toFixed(3);
    lines.push(
      `| ${s.label} | ${cpuPerRequest(s, ['front', 'user-management'])} | ${cpuPerRequest(s, ['notification'])} | ` +
        `${cpuPerRequest(s, [], true)} | ${generator} | ${cpuPerRequest(s, ['xray-sink'])} | ${cpuPerRequest(s, ['database'])} |`,
    );
  }

  lines.push(
    '',
    `| Route | Ours / baseline, throughput (goal ≥ ${goals.oursOverBaseline}) | Tracing cost in throughput, every request sampled (goal ≤ ${goals.tracingCost * 100}%) | Tracing cost, default sampling (goal ≤ ${goals.tracingCost * 100}%) | Tracing cost, none sampled | The floor: one datagram per request and hop, no tracer (baseline's loss) | Traced ours / baseline | Segments sent per request, share the sink dropped (every request sampled; the floor) |`,
    '|---|---|---|---|---|---|---|---|',
  );
  const segmentsPerRequest = (id: string): string => {
    const runs = results.scenarios.find((s) => s.id === id)?.runs ?? [];
    const sum = (of: (sink: SinkReport) => number): number => runs.reduce((total, run) => total + (run.trace ? of(run.trace.sink) : 0), 0);
    return `${runs.map((run) => run.trace?.segmentsPerRequest ?? 0).join(', ')} (${dropShare({ datagrams: sum((s) => s.datagrams), dropped: sum((s) => s.dropped) })} dropped)`;
  };
  for (const c of results.comparisons) {
    lines.push(
      `| ${routeName(c.route)} | ` +
        `${formatSpread(c.oursOverBaseline, 2)} ${verdict(c.oursOverBaseline.median >= goals.oursOverBaseline)} | ` +
        `${formatSpread(percent(c.tracingCost), 0, '%')} ${verdict(c.tracingCost.median <= goals.tracingCost)} | ` +
        `${formatSpread(percent(c.defaultSamplingCost), 0, '%')} ${verdict(c.defaultSamplingCost.median <= goals.tracingCost)} | ` +
        `${formatSpread(percent(c.unsampledCost), 0, '%')} | ${formatSpread(percent(c.floorCost), 0, '%')} | ${formatSpread(c.tracedOverBaseline, 2)} | ` +
        `${segmentsPerRequest(`${c.route}/ours/on`)}; ${segmentsPerRequest(`${c.route}/floor/none`)} |`,
    );
  }
  lines.push(
    '',
    '| Route | The same from CPU time per response: ours / baseline | tracing cost, every request sampled | tracing cost, default sampling | tracing cost, none sampled | the floor, on the baseline | the floor\'s datagrams on ours (a tracer costing nothing itself) |',
    '|---|---|---|---|---|---|---|',
  );
  for (const c of results.comparisons) {
    lines.push(
      `| ${routeName(c.route)} | ${formatSpread(c.cpuOursOverBaseline, 2)} ${verdict(c.cpuOursOverBaseline.median >= goals.oursOverBaseline)} | ` +
        `${formatSpread(percent(c.cpuTracingCost), 0, '%')} ${verdict(c.cpuTracingCost.median <= goals.tracingCost)} | ` +
        `${formatSpread(percent(c.cpuDefaultSamplingCost), 0, '%')} ${verdict(c.cpuDefaultSamplingCost.median <= goals.tracingCost)} | ` +
        `${formatSpread(percent(c.cpuUnsampledCost), 0, '%')} | ${formatSpread(percent(c.cpuFloorCost), 0, '%')} | ${formatSpread(percent(c.cpuFloorOnOurs), 0, '%')} |`,
    );
  }

  lines.push(
    '',
    `| Service | Start-up to first ready (ms, goal < ${goals.startupMs}) | RSS idle: just started (MB, goal < ${goals.rssMB}) | ` +
      `RSS idle: alone through the run (MB, goal < ${goals.rssMB}) | ` +
      `RSS after load: as the load stops (MB, goal < ${goals.rssMB}) | RSS after load: ${results.settings.settleSeconds} s later (MB, goal < ${goals.rssMB}) |`,
    '|---|---|---|---|---|---|',
  );
  for (const s of results.services) {
    lines.push(
      `| ${s.service} | ${formatSpread(s.startupMs)} ${verdict(s.startupMs.median < goals.startupMs)} | ` +
        `${formatSpread(s.rssIdleMB, 1)} ${verdict(s.rssIdleMB.median < goals.rssMB)} | ` +
        `${formatSpread(s.rssIdleAloneMB, 1)} ${verdict(s.rssIdleAloneMB.median < goals.rssMB)} | ` +
        `${formatSpread(s.rssAfterLoadMB, 1)} ${verdict(s.rssAfterLoadMB.median < goals.rssMB)} | ` +
        `${formatSpread(s.rssSettledMB, 1)} ${verdict(s.rssSettledMB.median < goals.rssMB)} |`,
    );
  }
  for (const b of results.baselineMemory) {
    const name = b.process === 'front' ? 'baseline front (bare http, for reference)' : 'baseline back (bare http, for reference)';
    lines.push(`| ${name} | | ${formatSpread(b.rssIdleMB, 1)} | | ${formatSpread(b.rssAfterLoadMB, 1)} | ${formatSpread(b.rssSettledMB, 1)} |`);
  }

  const g = results.generator;
  lines.push(
    '',
    '| Load generator check | |',
    '|---|---|',
    `| Its ceiling (one trivial bare-http server) | ${formatSpread(g.ceiling)} req/s |`,
    `| Highest median throughput through a stack | ${integer.format(g.highestMeasured)} req/s (ceiling ÷ that: ${(g.ceiling.median / g.highestMeasured).toFixed(1)}×) |`,
    `| Its largest CPU share in any run through a stack | ${g.highestGeneratorCpu.toFixed(2)} of ${machine.cores} cores |`,
    `| Verdict | ${g.notTheBottleneck ? 'not the bottleneck (its lowest ceiling is at least 1.5× the highest throughput measured)' : '**may be the bottleneck**: its ceiling is less than 1.5× a measured throughput'} |`,
    `| Same JSON as ours from the baseline | /notification-xray: ${results.sameBodies.xray ? 'yes' : '**no**'}, /users: ${results.sameBodies.users ? 'yes' : '**no**'} |`,
  );
  if (results.profiles) lines.push(...formatProfiles(results.profiles));
  return lines.join('\n');
}
