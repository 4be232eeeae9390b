import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '@canary/service-kit';
import type { TObject } from '@sinclair/typebox';
import type { Dispatcher } from 'undici';

/**
 * User management's own factory of its connections to the notification service (`notificationPool` in
 * services/user-management/src/notification-client.ts), loaded from its build at run time: the baseline then reaches
 * the replicas with exactly the policy, pool size and timeouts of our service, whatever they become.
 */
export async function userManagementPool(repositoryRoot: string, env: NodeJS.ProcessEnv): Promise<Dispatcher> {
  const dist = path.join(repositoryRoot, 'services/user-management/dist');
  const { configSchema } = (await import(pathToFileURL(path.join(dist, 'config.js')).href)) as { configSchema: TObject };
  const { notificationPool } = (await import(pathToFileURL(path.join(dist, 'notification-client.js')).href)) as {
    notificationPool: (settings: unknown) => Dispatcher;
  };
  return notificationPool(loadConfig(configSchema, env));
}
