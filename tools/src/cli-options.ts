/** A command line the tool cannot run with: its CLI prints the message and the usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A numeric flag's value, `fallback` when absent; out of range, not a number, or not whole when `integer`: a UsageError. */
export function numberFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number, integer = true): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  // Plain decimals only: Number() would also take "0x10", "1e3" or " 5".
  if (!/^-?\d+(\.\d+)?$/.test(raw) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

/**
 * The tool's options from its command line: undefined after printing the usage for `--help`; on a UsageError the
 * message and the usage go to stderr and the process exits 2.
 */
export function optionsOrExit<T>(parse: (args: string[]) => T | undefined, usage: string, args = process.argv.slice(2)): T | undefined {
  let options: T | undefined;
  try {
    options = parse(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (options === undefined) process.stdout.write(`${usage}\n`);
  return options;
}

/** On Ctrl-C or SIGTERM: says so, runs `release` (stacks, databases an interrupted run left), then exits 130. */
export function releaseOnSignals(what: string, release: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: ${what}\n`);
      void release().finally(() => process.exit(130));
    });
  }
}
