import { releaseAfterInterrupt, runLoadTest } from './load-test.js';
import { optionsOrExit, releaseOnSignals } from '../cli-options.js';
import { parseLoadOptions, usage } from './load-options.js';
import { formatReport } from './report.js';

async function main(): Promise<void> {
  const options = optionsOrExit(parseLoadOptions, usage);
  if (!options) return;
  releaseOnSignals('stopping the stack and dropping the load database', releaseAfterInterrupt);
  // Progress goes to stderr, so stdout holds only the report.
  const report = await runLoadTest(options, (line) => process.stderr.write(`[load] ${line}\n`));
  process.stdout.write(`${formatReport(report)}\n`);
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`load failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
