import { releaseAfterInterrupt, runLoadTest } from './load-test.js';
import { parseLoadOptions, usage, UsageError, type LoadOptions } from './load-options.js';
import { formatReport } from './report.js';

async function main(): Promise<void> {
  let options: LoadOptions | undefined;
  try {
    options = parseLoadOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (!options) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: stopping the stack and dropping the load database\n`);
      void releaseAfterInterrupt().finally(() => process.exit(130));
    });
  }
  // Progress goes to stderr, so stdout holds only the report.
  const report = await runLoadTest(options, (line) => process.stderr.write(`[load] ${line}\n`));
  process.stdout.write(`${formatReport(report)}\n`);
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`load failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
