import { parseArgs } from 'node:util';
import { numberFlag, UsageError } from '../cli-options.js';

export { UsageError };

export interface LoadOptions {
  /** Seconds of load. */
  durationSeconds: number;
  /** Concurrent clients, each a keep-alive connection running the mix in a loop. */
  connections: number;
  /** Seconds of the same load before the first memory sample, not measured. */
  warmupSeconds: number;
  /** Seconds the stack idles after the load before the last memory sample. */
  settleSeconds: number;
  /** Force a full garbage collection in every service (over the inspector) before the first and the last sample. */
  gc: boolean;
  /** A request without an answer after this many seconds counts as an error. */
  timeoutSeconds: number;
  /** Users inserted before the load, read by GET /usermgmt/user/{username}. */
  users: number;
}

export const usage = `usage: npm run load -- [--duration S] [--connections C] [--warmup S] [--settle S] [--timeout S] [--users N] [--no-gc]

Starts the local stack (user management, notification V1 x2 + V2 x2 behind the balancer, an SMTP sink) on free ports
with a database of its own, runs C concurrent clients for S seconds, each repeating a mix of GET /usermgmt/users,
GET /usermgmt/user/{username}, POST /usermgmt/user (a new user each time) and GET /usermgmt/notification-xray,
samples the memory of every service process before (after a warm-up), during and after (once the outbox has sent
every account e-mail and the stack has idled), stops the stack, drops the database and prints a report. Exit code 1 when any request failed (a non-2xx answer, a connection error or a timeout).

  --duration S     seconds of load (default 60)
  --connections C  concurrent clients (default 200)
  --warmup S       seconds of the same load before the first memory sample, not measured (default 5)
  --settle S       seconds of idling after the load before the last memory sample (default 10)
  --timeout S      seconds a request may take before it counts as an error (default 30)
  --users N        users inserted before the load for the single-user reads (default 100)
  --no-gc          do not force a garbage collection before the first and last memory samples

The environment's DB_* (default root@127.0.0.1:3306) name the database server; LOG_LEVEL (default warn) and
AWS_XRAY_SDK_ENABLED are passed to the services.`;

/** Parses the command line; `--help` gives undefined. */
export function parseLoadOptions(args: string[]): LoadOptions | undefined {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        duration: { type: 'string' },
        connections: { type: 'string' },
        warmup: { type: 'string' },
        settle: { type: 'string' },
        timeout: { type: 'string' },
        users: { type: 'string' },
        'no-gc': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  return {
    durationSeconds: numberFlag('duration', values.duration, 60, 1, 3600),
    connections: numberFlag('connections', values.connections, 200, 1, 5000),
    warmupSeconds: numberFlag('warmup', values.warmup, 5, 0, 600),
    settleSeconds: numberFlag('settle', values.settle, 10, 0, 600),
    timeoutSeconds: numberFlag('timeout', values.timeout, 30, 1, 600),
    users: numberFlag('users', values.users, 100, 1, 100_000),
    gc: values['no-gc'] !== true,
  };
}
