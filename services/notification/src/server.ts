import { ConfigError, runService, tracingOptions, type XrayTracingOptions } from '@canary/service-kit';
import { buildApp } from './app.js';
import { loadNotificationConfig, type NotificationConfig } from './config.js';

let config: NotificationConfig;
let tracing: XrayTracingOptions;
try {
  config = loadNotificationConfig(process.env);
  // Each version is its own node of the X-Ray service map.
  tracing = tracingOptions(config, `${config.APP_VERSION}-Notification-Microservice`);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}

const app = buildApp(config, { tracing });
await runService({
  app,
  service: 'notification',
  host: config.HOST,
  port: config.PORT,
  graceMs: config.SHUTDOWN_GRACE_MS,
  drainMs: config.SHUTDOWN_DRAIN_MS,
});
