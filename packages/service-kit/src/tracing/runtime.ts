import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { DaemonTarget } from './daemon-target.js';
import type { ContextMissing, XrayTracingOptions } from './options.js';
import { sdkLogger } from './sdk-logger.js';

export type XraySdk = typeof import('aws-xray-sdk-core');
export type Segment = InstanceType<XraySdk['Segment']>;
export type Subsegment = InstanceType<XraySdk['Subsegment']>;

/** The SDK once loaded, with the pieces every capture needs. */
export interface XrayRuntime {
  sdk: XraySdk;
  daemon: DaemonTarget;
  /** The name of the app that acquired the runtime last: background tasks' segments carry it. */
  segmentName: string;
  contextMissing: ContextMissing;
  /** The SDK's own log: pino, `component: xray`. */
  log: FastifyBaseLogger;
}

/** The slot of the SDK's segment emitter where it keeps its UDP socket (created on first send when empty). */
interface SegmentEmitterInternals {
  socket?: Pick<DaemonTarget, 'send'>;
}

// The SDK is process-global (sampler, daemon address, logger), so this state is too.
let current: XrayRuntime | undefined;
let users = 0;

/**
 * The trace of a request (or task) the sampler left out. No SDK segment is made for it, which is most of what
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

/**
 * Random bytes drawn from the system a few kilobytes at a time: one `randomFillSync` call costs about 2 µs on a
 * virtual machine whatever its size, as much as the rest of an unsampled request's tracing.
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const hex = randomPool.toString('hex', randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

/** `1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`, the X-Ray trace id format. */
export function newTraceId(): string {
  const seconds = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return `1-${seconds}-${randomHex(12)}`;
}

/** What a traced piece of code runs in: an open (sub)segment of a sampled trace, or an unsampled trace. */
export type TraceScope = Segment | Subsegment | UnsampledTrace;

/**
 * The current request's segment (or a task's), kept by Node's AsyncLocalStorage rather than by the SDK's
 * cls-hooked namespace: cls-hooked runs four async hooks on every async operation of the process and halved
 * the throughput of a traced service even with nothing sampled (XRAY-NODE-FACTS §6). The SDK runs in its
 * manual mode, as a segment builder, sampler and emitter.
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
  return scope.isClosed() ? undefined : scope;
}

/**
 * Loads and configures the SDK. It is imported here, on demand, so with tracing off it is never loaded.
 * In its default automatic mode the SDK creates a cls-hooked namespace on load, which enables async hooks
 * for good; AWS_XRAY_MANUAL_MODE, which it reads once on load, is the only way to keep them off.
 */
export async function acquireRuntime(options: XrayTracingOptions, log: FastifyBaseLogger): Promise<XrayRuntime> {
  process.env.AWS_XRAY_MANUAL_MODE ??= 'true';
  const sdk = (await import('aws-xray-sdk-core')).default;
  const emitter = (await import('aws-xray-sdk-core/dist/lib/segment_emitter.js')).default as unknown as SegmentEmitterInternals;

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
    current?.daemon.close();
    const daemon = new DaemonTarget({ host, port, log: log.child({ component: 'xray' }) });
    emitter.socket = daemon;
    // Centralized sampling asks the daemon over TCP at this address (the SDK already has it if the variable is set).
    if (!process.env.AWS_XRAY_DAEMON_ADDRESS) sdk.setDaemonAddress(`${host}:${port}`);
    current = { sdk, daemon, segmentName: options.segmentName, contextMissing: options.contextMissing, log: log.child({ component: 'xray' }) };
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
    current.daemon.close();
    current = undefined;
    users = 0;
  }
}
