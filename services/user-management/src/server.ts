import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { ConfigError, runService, tracingOptions, type XrayTracingOptions } from '@canary/service-kit';
import { buildApp } from './app.js';
import { loadUserManagementConfig, type UserManagementConfig } from './config.js';
import { runMigrations } from './db/migrations.js';
import { createDatabasePool, type DatabasePool } from './db/pool.js';

function readConfig(): { config: UserManagementConfig; tracing: XrayTracingOptions } {
  try {
    const config = loadUserManagementConfig();
    return { config, tracing: tracingOptions(config, 'User-Management-Microservice') };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`user-management: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * Waits until the database answers `SELECT 1`, retrying with backoff (0.5 s doubling to 5 s) for at most
 * DB_STARTUP_TIMEOUT_MS, as the original's initContainer waited for mysql:3306.
 */
async function waitForDatabase(pool: DatabasePool, config: UserManagementConfig, log: FastifyBaseLogger): Promise<void> {
  const deadline = Date.now() + config.DB_STARTUP_TIMEOUT_MS;
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('SELECT 1');
      if (attempt > 1) log.info({ attempt }, 'database is reachable');
      return;
    } catch (err) {
      const { code, message } = err as { code?: string; message?: string };
      const target = `${config.DB_HOSTNAME}:${config.DB_PORT}/${config.DB_NAME}`;
      if (Date.now() + delay > deadline) {
        throw new Error(`database ${target} did not answer within DB_STARTUP_TIMEOUT_MS=${config.DB_STARTUP_TIMEOUT_MS} (last error: ${code ?? message})`);
      }
      log.warn({ attempt, target, code, reason: message, retryInMs: delay }, 'waiting for the database');
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

const { config, tracing } = readConfig();
const pool = createDatabasePool(config);
const app = buildApp(config, { pool, tracing });
try {
  await waitForDatabase(pool, config, app.log);
  const { applied } = await runMigrations(pool, app.log);
  app.log.info({ applied }, applied.length ? 'schema migrated' : 'schema up to date');
} catch (err) {
  app.log.fatal({ err }, 'cannot start: the database is not usable');
  await app.close();
  process.exit(1);
}
await runService({
  app,
  service: 'user-management',
  host: config.HOST,
  port: config.PORT,
  graceMs: config.SHUTDOWN_GRACE_MS,
  drainMs: config.SHUTDOWN_DRAIN_MS,
});
