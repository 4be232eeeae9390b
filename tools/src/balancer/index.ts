export {
  backendId,
  createBalancer,
  type BackendAddress,
  type BackendState,
  type BackendStats,
  type Balancer,
  type BalancerEvent,
  type BalancerOptions,
} from './balancer.js';
