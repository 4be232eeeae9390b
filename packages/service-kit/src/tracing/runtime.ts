import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { FastifyBaseLogger } from 'fastify';
import { DaemonTarget } from './daemon-target.js';
import { newTraceId } from './ids.js';
import type { ContextMissing, XrayTracingOptions } from './options.js';
import { sdkLogger } from './sdk-logger.js';
import { SegmentQueue } from './segment-emitter.js';
import { segmentDefaults, TraceSegment, type SegmentDefaults, type TraceSubsegment } from './segment.js';

export type XraySdk = typeof import('aws-xray-sdk-core');

/** The SDK once loaded (for its sampler), the daemon, and what every capture needs. */
export interface XrayRuntime {
  sdk: XraySdk;
  daemon: DaemonTarget;
  /** The name of the app that acquired the runtime last: background tasks' segments carry it. */
  segmentName: string;
  contextMissing: ContextMissing;
  /** The SDK's own log: pino, `component: xray`. */
  log: FastifyBaseLogger;
  /** A new open segment of a sampled trace, sent to the daemon once it and its subsegments are closed. */
  newSegment(name: string, traceId: string, parentId: string | undefined): TraceSegment;
  /** Sends what is still queued, then closes the daemon's socket. */
  close(): void;
}

// The SDK is process-global (sampler, daemon address, logger), so this state is too.
let current: XrayRuntime | undefined;
let users = 0;

/**
 * The trace of a request (or task) the sampler left out. No segment is made for it, which is most of what
 * tracing costs; it keeps only what a downstream call needs to be left out too: the trace id (the caller's, or
 * one made when first asked for) and the decision.
 */
export class UnsampledTrace {
  #traceId: string | undefined;

  constructor(traceId?: string) {
    this.#traceId = traceId;
  }

  get traceId(): string {
    this.#traceId ??= newTraceId();
    return this.#traceId;
  }
}

/** What the SDK would put in every segment: which SDK (its sampler decides here) and which runtime. */
function processSegmentDefaults(): SegmentDefaults {
  const sdkPackage = createRequire(import.meta.url)('aws-xray-sdk-core/package.json') as { version: string };
  return segmentDefaults(
    { sdk: 'X-Ray for Node.js', sdk_version: sdkPackage.version, package: '@canary/service-kit' },
    { runtime: process.release.name, runtime_version: process.version },
  );
}

/** What a traced piece of code runs in: an open (sub)segment of a sampled trace, or an unsampled trace. */
export type TraceScope = TraceSegment | TraceSubsegment | UnsampledTrace;

/**
 * The current request's segment (or a task's), kept by Node's AsyncLocalStorage rather than by the SDK's
 * cls-hooked namespace: cls-hooked runs four async hooks on every async operation of the process and halved
 * the throughput of a traced service even with nothing sampled (XRAY-NODE-FACTS §6). The SDK runs in its
 * manual mode, for its sampler only: segments are built and sent by `segment.ts` and `segment-emitter.ts`.
 */
const storage = new AsyncLocalStorage<TraceScope>();

/**
 * The SDK while at least one app traces, otherwise undefined. Captures check it on every call and pass
 * calls through untouched when it is undefined.
 */
export function activeRuntime(): XrayRuntime | undefined {
  return current;
}

/** Runs `work` with `scope` as the current X-Ray context. */
export function runInScope<T>(scope: TraceScope, work: () => T): T {
  return storage.run(scope, work);
}

/**
 * What AWS_XRAY_CONTEXT_MISSING asks for when a call that should be traced runs outside any open segment:
 * LOG_ERROR logs it (the call goes out untraced), RUNTIME_ERROR throws, IGNORE_ERROR says nothing.
 */
export function reportMissingContext(runtime: XrayRuntime, what: string): void {
  if (runtime.contextMissing === 'IGNORE_ERROR') return;
  const message = `Failed to get the current sub/segment from the context: ${what} runs outside any request or traceTask`;
  if (runtime.contextMissing === 'RUNTIME_ERROR') throw new Error(message);
  runtime.log.error(message);
}

/**
 * What this code runs in, if tracing is on and it runs in a request or task: the open (sub)segment of a sampled
 * trace, or an UnsampledTrace. A segment already closed (work left running after the response) is none.
 */
export function currentScope(): TraceScope | undefined {
  if (!current) return undefined;
  const scope = storage.getStore();
  if (scope === undefined || scope instanceof UnsampledTrace) return scope;
  return scope.closed ? undefined : scope;
}

/**
 * Loads and configures the SDK. It is imported here, on demand, so with tracing off it is never loaded.
 * In its default automatic mode the SDK creates a cls-hooked namespace on load, which enables async hooks
 * for good; AWS_XRAY_MANUAL_MODE, which it reads once on load, is the only way to keep them off.
 */
export async function acquireRuntime(options: XrayTracingOptions, log: FastifyBaseLogger): Promise<XrayRuntime> {
  process.env.AWS_XRAY_MANUAL_MODE ??= 'true';
  const sdk = (await import('aws-xray-sdk-core')).default;

  sdk.setLogger(sdkLogger(log));
  // The SDK reads AWS_XRAY_CONTEXT_MISSING itself on load and then refuses (with a warning) to be told again.
  if (!process.env.AWS_XRAY_CONTEXT_MISSING) sdk.setContextMissingStrategy(options.contextMissing);

  if (options.samplingRules) {
    // A rules file is a deliberate local policy (a demo tracing every call): asking the daemon would override it.
    sdk.middleware.disableCentralizedSampling();
    sdk.middleware.setSamplingRules(options.samplingRules as Parameters<XraySdk['middleware']['setSamplingRules']>[0]);
  }

  const { host, port } = options.daemon;
  if (!current || current.daemon.host !== host || current.daemon.port !== port) {
    current?.close();
    const daemon = new DaemonTarget({ host, port, log: log.child({ component: 'xray' }) });
    // Centralized sampling asks the daemon over TCP at this address (the SDK already has it if the variable is set).
    if (!process.env.AWS_XRAY_DAEMON_ADDRESS) sdk.setDaemonAddress(`${host}:${port}`);
    const queue = new SegmentQueue(daemon);
    const send = (segment: TraceSegment): void => queue.push(segment);
    const defaults = processSegmentDefaults();
    current = {
      sdk,
      daemon,
      segmentName: options.segmentName,
      contextMissing: options.contextMissing,
      log: log.child({ component: 'xray' }),
      newSegment: (name, traceId, parentId) => new TraceSegment(name, traceId, parentId, send, defaults),
      close: () => {
        queue.flush();
        daemon.close();
      },
    };
  }
  current.segmentName = options.segmentName;
  // The variable wins, as it does inside the SDK.
  current.contextMissing = (process.env.AWS_XRAY_CONTEXT_MISSING as ContextMissing | undefined) || options.contextMissing;
  users += 1;

  log.info(
    {
      segmentName: options.segmentName,
      daemon: `${host}:${port}`,
      sampling: options.samplingRulesFile ?? 'centralized rules from the daemon, else the SDK default (1/s + 5%)',
      contextMissing: process.env.AWS_XRAY_CONTEXT_MISSING || options.contextMissing,
    },
    'X-Ray tracing on',
  );
  return current;
}

/** Called when an app that acquired the runtime closes; the last one stops the daemon's DNS refresh. */
export function releaseRuntime(): void {
  users -= 1;
  if (users <= 0 && current) {
    current.close();
    current = undefined;
    users = 0;
  }
}
