import type { FastifyBaseLogger } from 'fastify';

/** The logger interface of aws-xray-sdk-core (`setLogger`). */
export interface SdkLogger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/**
 * The SDK warns when it cannot connect to the daemon's TCP sampling API, then uses its local rules. With no
 * daemon (a laptop, a test) that is the documented fallback rather than a fault, so it is an info line; a
 * daemon that answers with an error still gives a warning.
 */
function isSamplingFallback(args: unknown[]): boolean {
  const [message, err] = args;
  return (
    typeof message === 'string' &&
    message.startsWith('Failed to retrieve sampling') &&
    err instanceof Error &&
    err.message.startsWith('Failed to connect to X-Ray daemon')
  );
}

/**
 * The SDK calls `logger.error('Error occured sending segment: ', err)`: pino would read the error as a format
 * argument and drop it. Errors go to pino's `err` field (type, message, stack, code), other arguments to `details`.
 */
function forward(log: FastifyBaseLogger, level: Level) {
  // pino has isLevelEnabled; the type fastify exposes does not declare it.
  const enabled = (log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.bind(log) ?? (() => true);
  return (...args: unknown[]): void => {
    if (!enabled(level)) return;
    const [first, ...rest] = args;
    const message = typeof first === 'string' ? first.trim().replace(/:$/, '') : '';
    const extra = typeof first === 'string' ? rest : args;
    const err = extra.find((value): value is Error => value instanceof Error);
    const details = extra.filter((value) => value !== err && value !== undefined);
    const fields = { ...(err ? { err } : {}), ...(details.length > 0 ? { details } : {}) };
    log[level](fields, message || 'X-Ray SDK');
  };
}

/**
 * The SDK's logs through the service's pino logger. Its info lines are per-request chatter in some setups
 * ("No effective centralized sampling rule match" on every request without a daemon sampling API), so they
 * are logged at debug, and its debug lines (every segment sent, in full) at trace.
 */
export function sdkLogger(log: FastifyBaseLogger): SdkLogger {
  const xrayLog = log.child({ component: 'xray' });
  const warn = forward(xrayLog, 'warn');
  // The fallback is expected: one line saying what happens, without the stack of a refused connection.
  const fallback = (...args: unknown[]): void => {
    const reason = args.find((value): value is Error => value instanceof Error)?.message;
    xrayLog.info({ reason }, "no sampling rules from the X-Ray daemon's sampling API; using the SDK's default rules");
  };
  return {
    debug: forward(xrayLog, 'trace'),
    info: forward(xrayLog, 'debug'),
    warn: (...args: unknown[]) => (isSamplingFallback(args) ? fallback : warn)(...args),
    error: forward(xrayLog, 'error'),
  };
}
