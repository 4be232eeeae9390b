import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '@canary/service-kit';
import type { TObject } from '@sinclair/typebox';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

/** An answer as user management's client collects it. */
export interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A call through the pool, its whole answer collected from undici's dispatch callbacks. */
export type Call = (dispatcher: Dispatcher, options: Dispatcher.DispatchOptions) => Promise<Answer>;

/**
 * User management's own factory of its connections to the notification service (`notificationPool` in
 * services/user-management/src/notification-client.ts) and its way of making one call through them (`call`),
 * loaded from its build at run time: the baseline then reaches the replicas with exactly the policy, pool size and
 * timeouts of our service, and reads answers the cheapest way undici offers, whatever they become.
 */
export async function userManagementPool(repositoryRoot: string, env: NodeJS.ProcessEnv): Promise<{ dispatcher: Dispatcher; call: Call }> {
  const dist = path.join(repositoryRoot, 'services/user-management/dist');
  const { configSchema } = (await import(pathToFileURL(path.join(dist, 'config.js')).href)) as { configSchema: TObject };
  const { notificationPool, call } = (await import(pathToFileURL(path.join(dist, 'notification-client.js')).href)) as {
    notificationPool: (settings: unknown) => Dispatcher;
    call: Call;
  };
  return { dispatcher: notificationPool(loadConfig(configSchema, env)), call };
}
