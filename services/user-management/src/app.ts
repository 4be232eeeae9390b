import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { jsonBodies, lifecyclePlugin, registerErrorHandling, serverOptions, tracingDisabled, xrayTracing, type XrayTracingOptions } from '@canary/service-kit';
import type { UserManagementConfig } from './config.js';
import { createDatabasePool, type DatabasePool, type MysqlDriver } from './db/pool.js';
import { createNotificationClient, type NotificationClient } from './notification-client.js';
import { leaseFor, OutboxDispatcher } from './outbox/outbox-dispatcher.js';
import { healthRoutes } from './routes/health-routes.js';
import { notificationProxyRoutes } from './routes/notification-proxy-routes.js';
import { userRoutes } from './routes/user-routes.js';
import { createUsersRepository } from './users/users-repository.js';
import { serviceVersion } from './version.js';

export { configSchema, type UserManagementConfig } from './config.js';
export { runMigrations, migrations } from './db/migrations.js';
export { createDatabasePool, type DatabasePool, type MysqlDriver } from './db/pool.js';
export { createNotificationClient, NotificationError, type NotificationClient } from './notification-client.js';
export { OutboxDispatcher } from './outbox/outbox-dispatcher.js';
export { serviceVersion } from './version.js';

/** Largest request body: a user is a few hundred bytes; 16 KiB leaves room and keeps abuse cheap. */
export const bodyLimit = 16 * 1024;

export interface AppDependencies {
  /** false: no log output (tests). */
  logging?: boolean;
  /** A pool to use instead of creating one from the config. The app ends it on close either way. */
  pool?: DatabasePool;
  /** The mysql2 module to build the pool with; ignored when `pool` is given. */
  mysqlDriver?: MysqlDriver;
  /** A client to use instead of creating one from the config. The app closes it on close either way. */
  notificationClient?: NotificationClient;
  /** false: no outbox dispatcher in this instance (messages stay pending for another one). */
  outbox?: boolean;
  /** X-Ray for incoming requests (`tracingOptions(config, ...)` in server.ts); default off. */
  tracing?: XrayTracingOptions;
}

/** Builds the user management app without listening. Nothing connects until a request or `ready()` needs it. */
export function buildApp(config: UserManagementConfig, deps: AppDependencies = {}): FastifyInstance {
  const app = Fastify(serverOptions({ level: config.LOG_LEVEL, service: 'user-management', bodyLimit, logging: deps.logging })).withTypeProvider<TypeBoxTypeProvider>();

  const pool = deps.pool ?? createDatabasePool(config, deps.mysqlDriver);
  const client = deps.notificationClient ?? createNotificationClient(config);
  const dispatcher =
    deps.outbox === false
      ? undefined
      : new OutboxDispatcher({
          pool,
          client,
          log: app.log,
          pollIntervalMs: config.OUTBOX_POLL_INTERVAL_MS,
          retryBaseMs: config.OUTBOX_RETRY_BASE_MS,
          retryMaxMs: config.OUTBOX_RETRY_MAX_MS,
          maxAttempts: config.OUTBOX_MAX_ATTEMPTS,
          leaseMs: leaseFor(config.NOTIFICATION_CONNECT_TIMEOUT_MS, config.NOTIFICATION_RESPONSE_TIMEOUT_MS),
        });

  // First, so every later hook and handler runs inside the request's segment.
  app.register(xrayTracing, deps.tracing ?? tracingDisabled);
  app.register(lifecyclePlugin);
  app.register(jsonBodies);
  registerErrorHandling(app);

  app.register(
    async (usermgmt) => {
      await usermgmt.register(healthRoutes, { pool, appVersion: serviceVersion, readinessTimeoutMs: config.DB_CONNECT_TIMEOUT_MS });
      await usermgmt.register(userRoutes, {
        users: createUsersRepository(pool),
        appVersion: serviceVersion,
        onUserCreated: () => dispatcher?.kick(),
      });
      await usermgmt.register(notificationProxyRoutes, { client });
    },
    { prefix: '/usermgmt' },
  );

  app.addHook('onReady', async () => {
    dispatcher?.start();
  });

  // Dispatcher first: it records an interrupted send through the pool, which therefore closes last.
  app.addHook('onClose', async () => {
    await dispatcher?.stop();
    await client.close();
    await pool.end();
  });

  return app;
}
