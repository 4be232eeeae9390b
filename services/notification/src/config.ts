import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, commonConfig, hostName, loadConfig, stringEnum, tracingConfig, type Env } from '@canary/service-kit';

export const appVersions = ['V1', 'V2'] as const;
export type AppVersion = (typeof appVersions)[number];

/** Every environment variable the notification service reads; the README lists them with these defaults. */
export const configSchema = Type.Object({
  ...commonConfig,
  ...tracingConfig,
  PORT: Type.Integer({ default: 8096, minimum: 0, maximum: 65535 }),
  APP_VERSION: stringEnum(appVersions, 'V1'),
  AWS_MAIL_SERVER_HOST: hostName('localhost'),
  AWS_MAIL_SERVER_PORT: Type.Integer({ default: 587, minimum: 1, maximum: 65535 }),
  AWS_MAIL_SERVER_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  AWS_MAIL_SERVER_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  AWS_MAIL_SERVER_FROM_ADDRESS: Type.String({ default: 'no-reply@example.com', format: 'email' }),
  /**
   * Longest a whole send may take before the answer is a 504. Keep it below the caller's response timeout
   * (user management's NOTIFICATION_RESPONSE_TIMEOUT_MS, 5000 by default), so the caller hears the outcome.
   */
  MAIL_SEND_TIMEOUT_MS: Type.Integer({ default: 4000, minimum: 100, maximum: 120_000 }),
});

export type NotificationConfig = Static<typeof configSchema>;

/**
 * Loads and checks the configuration: the schema's rules, and credentials that only make sense in pairs
 * (a password without a user would otherwise be ignored without a word).
 */
export function loadNotificationConfig(env: Env = process.env): NotificationConfig {
  const config = loadConfig(configSchema, env);
  if ((config.AWS_MAIL_SERVER_USERNAME === undefined) !== (config.AWS_MAIL_SERVER_PASSWORD === undefined)) {
    throw new ConfigError('Invalid environment: AWS_MAIL_SERVER_USERNAME and AWS_MAIL_SERVER_PASSWORD must be set together');
  }
  return config;
}
