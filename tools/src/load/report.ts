import type { LoadReport } from './load-test.js';

const mib = (bytes: number | undefined): string => (bytes === undefined ? '-' : (bytes / 1024 / 1024).toFixed(1));
const signedMib = (bytes: number | undefined): string => (bytes === undefined ? '-' : `${bytes >= 0 ? '+' : ''}${mib(bytes)}`);

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)];
}

/** The report as markdown: what ran, the answers, latency per route, memory per process, and the verdict. */
export function formatReport(report: LoadReport): string {
  const { figures, options } = report;
  const lines = [
    `## Load: ${options.connections} clients for ${options.durationSeconds} s against the local stack (user management, notification V1 x2 + V2 x2)`,
    '',
    `Started ${report.startedAt}; LOG_LEVEL=${report.logLevel}, tracing ${report.tracing ? 'on' : 'off'}; ${options.users} seeded users; ${options.warmupSeconds} s warm-up before.`,
    '',
    `- answers: ${figures.answers} in ${figures.durationSeconds} s, **${report.throughput}/s** with a 2xx; non-2xx ${figures.non2xx}, connection errors ${figures.errors} (timeouts ${figures.timeouts})`,
    `- latency of all answers: p50 ${figures.latencyMs.p50} ms, p99 ${figures.latencyMs.p99} ms, max ${figures.latencyMs.max} ms, mean ${figures.latencyMs.mean.toFixed(1)} ms`,
    `- notification-xray answered by: ${Object.entries(figures.xrayVersions).sort().map(([version, count]) => `${version} ${count}`).join(', ') || 'nobody'}`,
    `- users created: ${report.database.createdUsers} of ${figures.created} creates sent (${figures.byRoute['POST /usermgmt/user']?.statuses['200'] ?? 0} answered 200 before the end of the run cut the clients off)`,
    `- account e-mails: ${Object.entries(report.database.outbox).sort().map(([status, count]) => `${status} ${count}`).join(', ') || 'none'}; ` +
      (report.database.outboxDrainSeconds === undefined ? 'the outbox did not empty' : `the outbox was empty ${report.database.outboxDrainSeconds} s after the load`),
    '',
    ...table(
      ['route', 'answers', 'by status', 'p50 ms', 'p99 ms', 'max ms'],
      Object.entries(figures.byRoute).map(([route, data]) => [
        route,
        String(Object.values(data.statuses).reduce((sum, n) => sum + n, 0)),
        Object.entries(data.statuses).map(([status, n]) => `${status}: ${n}`).join(', '),
        String(data.latencyMs.p50),
        String(data.latencyMs.p99),
        String(data.latencyMs.max),
      ]),
    ),
    '',
    `Memory (MiB; heap = V8 heap in use after a forced GC${options.gc ? '' : ', not measured with --no-gc'}; "before" after the warm-up, "after" once the outbox was empty and the stack had idled ${options.settleSeconds} s):`,
    '',
    ...table(
      ['process', 'RSS before', 'RSS peak', 'RSS after', 'RSS change', 'heap before', 'heap after', 'heap change'],
      report.memory.map((m) => [
        `${m.name} (pid ${m.pid})`,
        mib(m.before.rssBytes),
        mib(m.peakRssBytes),
        mib(m.after.rssBytes),
        signedMib(m.after.rssBytes - m.before.rssBytes),
        mib(m.before.heapUsedBytes),
        mib(m.after.heapUsedBytes),
        m.before.heapUsedBytes === undefined || m.after.heapUsedBytes === undefined ? '-' : signedMib(m.after.heapUsedBytes - m.before.heapUsedBytes),
      ]),
    ),
    '',
    `Service log lines at warn or above: ${report.warnings.count}${report.warnings.first.length ? `\n\n${report.warnings.first.map((line) => `    ${line}`).join('\n')}` : ''}`,
    '',
    report.failures.length === 0 ? 'Result: PASS (no failed request)' : `Result: FAIL (${report.failures.join('; ')})`,
  ];
  return lines.join('\n');
}
