export { xrayTracing } from './fastify-plugin.js';
export { traceDispatcher, xrayHttpInterceptor, type TraceDispatcherOptions, type XrayHttpOptions } from './http-interceptor.js';
export { traceMysqlPool, type TraceMysqlOptions } from './mysql-capture.js';
export {
  parseDaemonAddress,
  tracingDisabled,
  tracingOptions,
  type ContextMissing,
  type DaemonAddress,
  type TracingConfig,
  type XrayTracingOptions,
} from './options.js';
export { traceTask } from './task.js';
export { traceContext, type TraceContext } from './trace-context.js';
export { loadSamplingRules, samplingRulesSchema, type SamplingRules } from './sampling-rules.js';
// What the bench's floor (tools/src/bench/baseline/segment-datagrams.ts) sends its datagrams in, as the services do.
export { defaultMaxQueued, defaultFlushMs } from './segment-emitter.js';
