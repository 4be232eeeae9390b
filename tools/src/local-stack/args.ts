import { parseArgs } from 'node:util';
import { maxReplicas } from './stack.js';
import { UsageError } from '../cli-options.js';

export { UsageError };


export interface StackArgs {
  v1: number;
  v2: number;
  port: number;
  notificationPort: number;
}

export const usage = `Usage: npm start -- [--v1 N] [--v2 M] [--port P] [--notification-port Q]
       node tools/dist/local-stack/main.js [options]

Runs the local canary stack: N notification V1 and M V2 replicas behind a balancer that picks one at random
for each new connection (as a Kubernetes ClusterIP Service does), and user management pointed at it.

  --v1 N                  V1 replicas, 0 to ${maxReplicas} (default 2)
  --v2 M                  V2 replicas, 0 to ${maxReplicas} (default 2)
  --port P                user management's port on 127.0.0.1 (default 8095; 0 picks a free one)
  --notification-port Q   the notification balancer's port on 127.0.0.1 (default 8096; 0 picks a free one)
  -h, --help              this text

The course's table: --v1 4 --v2 0 | --v1 3 --v2 1 | --v1 2 --v2 2 | --v1 1 --v2 3 | --v1 0 --v2 4.
Environment: DB_* (default root@127.0.0.1:3306, database usermgmt, created if missing), AWS_MAIL_SERVER_*
(unset: a local SMTP sink prints every message), AWS_XRAY_*, LOG_LEVEL. See docs/local-stack.md.`;

function integer(option: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) > max) throw new UsageError(`--${option} must be an integer from 0 to ${max}, not "${value}"`);
  return Number(value);
}

/** The command line, or 'help'; throws a UsageError naming what is wrong. */
export function parseStackArgs(argv: string[]): StackArgs | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        v1: { type: 'string' },
        v2: { type: 'string' },
        port: { type: 'string' },
        'notification-port': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const args = {
    v1: integer('v1', values.v1, 2, maxReplicas),
    v2: integer('v2', values.v2, 2, maxReplicas),
    port: integer('port', values.port, 8095, 65535),
    notificationPort: integer('notification-port', values['notification-port'], 8096, 65535),
  };
  if (args.port !== 0 && args.port === args.notificationPort) {
    throw new UsageError(`--port and --notification-port must differ (both are ${args.port})`);
  }
  return args;
}
