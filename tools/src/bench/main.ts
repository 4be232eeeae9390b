import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { releaseAfterInterrupt, runBench } from './bench.js';
import { optionsOrExit, releaseOnSignals } from '../cli-options.js';
import { parseBenchOptions, usage, UsageError } from './bench-options.js';
import { formatReport } from './report.js';

async function main(): Promise<void> {
  const options = optionsOrExit(parseBenchOptions, usage);
  if (!options) return;
  releaseOnSignals('stopping the stacks and dropping the bench database', releaseAfterInterrupt);
  // Progress goes to stderr, so stdout holds only the tables and the results line.
  let results;
  try {
    results = await runBench(options, (line) => process.stderr.write(`${line}\n`));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  const outDir = path.resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `bench-${results.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${formatReport(results)}\n\nresults: ${file}\n`);
}

main().then(
  // Everything is stopped and written (stdout is synchronous for files and pipes on Linux), so the bench exits here:
  // on Node 20, after a run with every connection closed, the process once spun at 100% CPU in node's exit-time
  // handle cleanup (FreeEnvironment, CleanupHandles) over 50 already-closed TCP handles and never ended.
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
