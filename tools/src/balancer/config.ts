import { Type, type Static } from '@sinclair/typebox';
import { commonConfig } from '@canary/service-kit';

/** Every environment variable of the balancer entry (`tools/dist/balancer/main.js`), with its default. */
export const balancerConfigSchema = Type.Object({
  LOG_LEVEL: commonConfig.LOG_LEVEL,
  BALANCER_HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  BALANCER_PORT: Type.Integer({ default: 8096, minimum: 0, maximum: 65535 }),
  /** Comma list of host:port; every address of each host is a backend. Checked in full by parseTargets. */
  BALANCER_TARGETS: Type.String({ minLength: 1, pattern: '^[^\\s]' }),
  BALANCER_HEALTH_PATH: Type.String({ default: '/notification/health/ready', pattern: '^/[^\\s]*$' }),
  BALANCER_HEALTH_INTERVAL_MS: Type.Integer({ default: 500, minimum: 50, maximum: 60_000 }),
  BALANCER_RESOLVE_INTERVAL_MS: Type.Integer({ default: 1000, minimum: 100, maximum: 60_000 }),
});

export type BalancerConfig = Static<typeof balancerConfigSchema>;
