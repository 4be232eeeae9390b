export { ConfigError, loadConfig, type Env } from './config.js';
export { loggerOptions, probeLogLevel, redactedPaths, type LoggerSettings } from './logger.js';
export { HttpError, errorBody, registerErrorHandling, statusName, type ApiErrorBody, type ErrorLogEntry, type SubError } from './errors.js';
export { serverOptions, jsonBodies, type ServerSettings } from './server-options.js';
export { lifecyclePlugin, runService, type Lifecycle, type ListeningMessage, type RunOptions } from './lifecycle.js';
export { commonConfig, hostName, stringEnum, tracingConfig } from './common-config.js';
export { instanceHeader } from './connection-policy/instance-header.js';
export {
  loadSamplingRules,
  parseDaemonAddress,
  traceDispatcher,
  traceMysqlPool,
  traceContext,
  traceTask,
  defaultFlushMs,
  defaultMaxQueued,
  tracingDisabled,
  tracingOptions,
  xrayHttpInterceptor,
  xrayTracing,
  type ContextMissing,
  type DaemonAddress,
  type SamplingRules,
  type TraceContext,
  type TraceDispatcherOptions,
  type TraceMysqlOptions,
  type TracingConfig,
  type XrayHttpOptions,
  type XrayTracingOptions,
} from './tracing/index.js';
export { instanceIdentity, processInstanceId } from './connection-policy/instance-identity.js';
export { apiErrorSchema } from './error-schema.js';
