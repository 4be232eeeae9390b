import { Type, type Static } from '@sinclair/typebox';
import { tracingConfig } from '../common-config.js';
import { ConfigError } from '../config.js';
import { loadSamplingRules, type SamplingRules } from './sampling-rules.js';

const tracingConfigSchema = Type.Object(tracingConfig);

/** The AWS_XRAY_* part of a service's configuration, as `loadConfig` returns it. */
export type TracingConfig = Static<typeof tracingConfigSchema>;

export type ContextMissing = TracingConfig['AWS_XRAY_CONTEXT_MISSING'];

export interface DaemonAddress {
  host: string;
  port: number;
}

/** What the `xrayTracing` plugin needs; `tracingOptions(config, name)` builds it from the environment. */
export interface XrayTracingOptions {
  enabled: boolean;
  /** The name of every segment this service sends (one node of the X-Ray service map). */
  segmentName: string;
  /** Where segments go (UDP) and where the SDK asks for centralized sampling rules (TCP). */
  daemon: DaemonAddress;
  contextMissing: ContextMissing;
  /** Local rules from XRAY_SAMPLING_RULES_FILE; when given they are the only rules (centralized sampling is off). */
  samplingRules?: SamplingRules;
  /** The file the rules came from, for the start-up log line. */
  samplingRulesFile?: string;
  /**
   * Whether handlers run with their segment as the async context (AsyncLocalStorage), which undici calls,
   * mysql2 queries and `traceContext()` read. Default true; a service that makes neither (notification) can
   * set false and save the cost of async context tracking on every promise.
   */
  keepContext?: boolean;
}

/** Tracing switched off: the plugin registers nothing and the SDK is never loaded. */
export const tracingDisabled: XrayTracingOptions = {
  enabled: false,
  segmentName: 'disabled',
  daemon: { host: '127.0.0.1', port: 2000 },
  contextMissing: 'LOG_ERROR',
};

export function parseDaemonAddress(address: string): DaemonAddress {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator);
  const port = Number(address.slice(separator + 1));
  if (separator <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError('Invalid environment: AWS_XRAY_DAEMON_ADDRESS must be host:port with a port from 1 to 65535');
  }
  return { host, port };
}

/**
 * The plugin's options from the service's configuration. `defaultName` is the service's segment name when
 * AWS_XRAY_TRACING_NAME is unset. A sampling-rules file is read and checked here, at start, and only when
 * tracing is on. Throws `ConfigError` naming the variable at fault.
 */
export function tracingOptions(config: TracingConfig, defaultName: string): XrayTracingOptions {
  if (!config.AWS_XRAY_SDK_ENABLED) return tracingDisabled;
  const file = config.XRAY_SAMPLING_RULES_FILE;
  return {
    enabled: true,
    segmentName: config.AWS_XRAY_TRACING_NAME ?? defaultName,
    daemon: parseDaemonAddress(config.AWS_XRAY_DAEMON_ADDRESS),
    contextMissing: config.AWS_XRAY_CONTEXT_MISSING,
    ...(file === undefined ? {} : { samplingRules: loadSamplingRules(file), samplingRulesFile: file }),
  };
}
