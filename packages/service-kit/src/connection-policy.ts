// A subpath of its own (`@canary/service-kit/connection-policy`): it loads undici, which a service that makes no
// HTTP calls (notification) should not pay for at start.
export {
  InstanceBalancedPool,
  instanceHeader,
  type InstanceBalancedPoolOptions,
  type InstanceStats,
  type PoolMode,
  type PoolStats,
} from './connection-policy/instance-balanced-pool.js';
// undici's Pool without undici's index (see undici-classes.ts), for a service's other connection policies.
export { Pool } from './connection-policy/undici-classes.js';
