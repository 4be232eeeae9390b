import type { LoadRun } from './load-generator.js';

/** Roles that are not part of the system under test: the daemon's stand-in and the database server. */
const outside = new Set(['xray-sink', 'database']);

/** Cores the system under test used during a run: its services and the balancer (in the bench process). */
export function systemCores(run: LoadRun): number {
  return Object.entries(run.cpu.byRole)
    .filter(([role]) => !outside.has(role))
    .reduce((sum, [, cores]) => sum + cores, run.cpu.orchestrator);
}

/**
 * CPU milliseconds the system under test spent per 2xx response. Unlike throughput, this hardly moves when another
 * process takes cores away, so it compares systems fairly on a shared machine.
 */
export function systemCpuMsPerResponse(run: LoadRun): number {
  return (systemCores(run) * run.durationSeconds * 1000) / Math.max(1, run.ok2xx);
}
