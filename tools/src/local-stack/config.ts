import { Type, type Static } from '@sinclair/typebox';

/**
 * The environment the local stack reads itself. Its DB_* defaults are those of a developer's local MariaDB/MySQL
 * (root over TCP on 127.0.0.1, no password), not the service's own defaults (localhost, dbadmin: the course's RDS).
 */
export const stackEnvSchema = Type.Object({
  DB_HOSTNAME: Type.String({ default: '127.0.0.1', minLength: 1 }),
  DB_PORT: Type.Integer({ default: 3306, minimum: 1, maximum: 65535 }),
  DB_NAME: Type.String({ default: 'usermgmt', pattern: '^[A-Za-z0-9_$]{1,64}$' }),
  DB_USERNAME: Type.String({ default: 'root', minLength: 1 }),
  DB_PASSWORD: Type.String({ default: '' }),
  /** Unset: the stack starts its own SMTP sink and points the notification replicas at it. */
  AWS_MAIL_SERVER_HOST: Type.Optional(Type.String({ minLength: 1 })),
});

export type StackEnv = Static<typeof stackEnvSchema>;
