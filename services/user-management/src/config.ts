import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, commonConfig, hostName, loadConfig, stringEnum, tracingConfig, type Env } from '@canary/service-kit';

/** Every environment variable the user management service reads; the README lists them with these defaults. */
export const configSchema = Type.Object({
  ...commonConfig,
  ...tracingConfig,
  PORT: Type.Integer({ default: 8095, minimum: 0, maximum: 65535 }),
  DB_HOSTNAME: hostName('localhost'),
  DB_PORT: Type.Integer({ default: 3306, minimum: 1, maximum: 65535 }),
  DB_NAME: Type.String({ default: 'usermgmt', pattern: '^[A-Za-z0-9_$]{1,64}$' }),
  DB_USERNAME: Type.String({ default: 'dbadmin', minLength: 1 }),
  DB_PASSWORD: Type.String({ default: '' }),
  /** Time allowed to open one TCP+handshake to MySQL; short, so an outage turns into a 503 quickly. */
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 60_000 }),
  DB_CONNECTION_LIMIT: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
  /**
   * Requests waiting for a pooled connection beyond this many get a 503 at once. Above the bursts one replica
   * serves (200 clients starting together queue about 190): the wait is bounded by DB_ACQUIRE_TIMEOUT_MS instead.
   */
  DB_QUEUE_LIMIT: Type.Integer({ default: 1000, minimum: 1, maximum: 100_000 }),
  /**
   * Longest a request waits for a pooled connection before its 503. mysql2 has no such bound: when the host does
   * not answer, its queue drains only DB_CONNECTION_LIMIT requests per connect timeout.
   */
  DB_ACQUIRE_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100, maximum: 120_000 }),
  /** How long the server waits for the database at start before it gives up and exits 1. */
  DB_STARTUP_TIMEOUT_MS: Type.Integer({ default: 60_000, minimum: 0, maximum: 3_600_000 }),
  NOTIFICATION_SERVICE_HOST: hostName('localhost'),
  NOTIFICATION_SERVICE_PORT: Type.Integer({ default: 8096, minimum: 1, maximum: 65535 }),
  NOTIFICATION_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 60_000 }),
  /** Limit for the response headers and, separately, for each pause in the response body. */
  NOTIFICATION_RESPONSE_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100, maximum: 120_000 }),
  /**
   * How calls reach the pods behind the notification Service: `instance-balanced` keeps connections alive and spreads
   * requests over the pods they reached (the replica split holds); `keep-alive` is plain pooling (pins traffic to a
   * few pods); `per-request` opens a connection per call, as the course's Java client did.
   */
  NOTIFICATION_CONNECTION_POLICY: stringEnum(['instance-balanced', 'keep-alive', 'per-request'], 'instance-balanced'),
  OUTBOX_POLL_INTERVAL_MS: Type.Integer({ default: 5000, minimum: 50, maximum: 3_600_000 }),
  OUTBOX_RETRY_BASE_MS: Type.Integer({ default: 1000, minimum: 10, maximum: 3_600_000 }),
  OUTBOX_RETRY_MAX_MS: Type.Integer({ default: 300_000, minimum: 10, maximum: 86_400_000 }),
  OUTBOX_MAX_ATTEMPTS: Type.Integer({ default: 50, minimum: 1, maximum: 10_000 }),
});

export type UserManagementConfig = Static<typeof configSchema>;

/** The configuration from `env`, checked variable by variable and then as a whole. */
export function loadUserManagementConfig(env: Env = process.env): UserManagementConfig {
  const config = loadConfig(configSchema, env);
  // A first delay above the longest would be cut to the longest at once: the backoff the operator asked for is lost.
  if (config.OUTBOX_RETRY_BASE_MS > config.OUTBOX_RETRY_MAX_MS) {
    throw new ConfigError('Invalid environment: OUTBOX_RETRY_BASE_MS must not be greater than OUTBOX_RETRY_MAX_MS');
  }
  return config;
}
