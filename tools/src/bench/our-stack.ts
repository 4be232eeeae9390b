import { startLocalStack } from '../local-stack/index.js';
import type { WatchedProcess } from './load-generator.js';

export interface OurStack {
  url: string;
  /** Roles `user-management` and `notification` (one per replica). */
  processes: WatchedProcess[];
  /** Log lines at warn level or above so far (the first 20 kept). */
  warnings: { count: number; first: string[] };
  close(): Promise<void>;
}

export interface OurStackOptions {
  v1: number;
  v2: number;
  databaseEnv: Record<string, string>;
  /** Variables for every service (tracing, LOG_LEVEL). */
  serviceEnv: Record<string, string>;
  /** Variables for user management alone (its connection policy). */
  usermgmtEnv: Record<string, string>;
}

/**
 * Our services through the local stack (`npm start`'s own code) on free ports. Its log lines are not printed (they would
 * mix into the table); warnings and errors are counted and the first ones kept for the report.
 */
export async function startOurStack(options: OurStackOptions): Promise<OurStack> {
  const warnings = { count: 0, first: [] as string[] };
  const stack = await startLocalStack({
    v1: options.v1,
    v2: options.v2,
    usermgmtPort: 0,
    notificationPort: 0,
    env: { ...process.env, ...options.databaseEnv, ...options.serviceEnv },
    usermgmtEnv: options.usermgmtEnv,
    write: (line, stream) => {
      if (stream !== 'stderr' && !/"level":(40|50|60)/.test(line)) return;
      warnings.count += 1;
      if (warnings.first.length < 20) warnings.first.push(line);
    },
  });
  return {
    url: `http://${stack.host}:${stack.usermgmtPort}`,
    processes: [
      { role: 'user-management', pid: stack.usermgmtPid },
      ...stack.replicas().map((replica) => ({ role: 'notification', pid: replica.pid })),
    ],
    warnings,
    close: () => stack.close(),
  };
}
