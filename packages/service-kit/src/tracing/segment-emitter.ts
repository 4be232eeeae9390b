import type { TraceSegment, TraceSubsegment } from './segment.js';

/** Every datagram to the daemon: this header, a newline, then one segment (or subsegment) document. */
const protocolHeader = '{"format":"json","version":1}\n';

/**
 * A UDP datagram carries at most 65,507 bytes over IPv4, and the daemon reads up to 64 KiB. A segment whose
 * document would be larger is sent without its subsegments, each of which goes in a datagram of its own, naming
 * its parent: X-Ray joins them again.
 */
export const maxDatagramBytes = 64_000;

/** Where datagrams go: a DaemonTarget, or a test's socket. */
export interface DatagramSender {
  send(message: Buffer): void;
}

function datagram(json: string): Buffer {
  return Buffer.from(protocolHeader + json);
}

/** Sends `entity` in one datagram, or, when that would be too large, without its children, each sent the same way. */
function sendTree(sender: DatagramSender, entity: TraceSegment | TraceSubsegment, jsonOf: () => string): void {
  const message = datagram(jsonOf());
  const children = entity.subsegments;
  if (message.length <= maxDatagramBytes || !children?.length) {
    sender.send(message);
    return;
  }
  entity.subsegments = undefined;
  sender.send(datagram(jsonOf()));
  for (const child of children) sendTree(sender, child, () => child.toStandaloneJson());
}

/** Serializes a closed segment, with its subsegments, into one datagram (or several when it is too large) and sends it. */
export function emitSegment(sender: DatagramSender, segment: TraceSegment): void {
  sendTree(sender, segment, () => segment.toJson());
}

export interface SegmentQueueOptions {
  /** Longest a closed segment waits before it is sent. */
  flushMs?: number;
  /** A queue this long is sent at once: the largest burst of datagrams the daemon's socket gets from this process. */
  maxQueued?: number;
}

/**
 * The daemon reads its UDP socket with the kernel's default receive buffer (212,992 bytes on Linux), and each queued
 * datagram is counted at the size of the kernel buffer that holds it (2,304 bytes for user management's, 1,280 for
 * notification's): a burst of 100 from each of five processes on one node overflowed it, and the kernel dropped
 * 4.5–10.7% of the segments of a saturated two-hop stack. Bursts of 16 lost none there, at the same throughput;
 * bursts of 8 cost a tenth of it (docs/benchmarks.md, which also says what still drops under the bench's heavier
 * load).
 */
export const defaultMaxQueued = 16;

/** The longest a closed segment waits for its batch: the daemon batches its uploads anyway. */
export const defaultFlushMs = 50;

/**
 * Closed segments, sent in batches shortly after they close rather than one by one as each response ends. With 5%
 * of requests sampled, a lone send every twentieth request ran its whole path cold (serializer, dgram, the kernel's
 * UDP code): measured, the default rule cost user management 22% more CPU per request where sampling everything
 * cost 35%. A batch runs warm, and outside any request. The daemon batches its uploads anyway; a segment reaches it
 * at most `flushMs` later.
 */
export class SegmentQueue {
  readonly #sender: DatagramSender;
  readonly #flushMs: number;
  readonly #maxQueued: number;
  #queued: TraceSegment[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(sender: DatagramSender, options: SegmentQueueOptions = {}) {
    this.#sender = sender;
    this.#flushMs = options.flushMs ?? defaultFlushMs;
    this.#maxQueued = options.maxQueued ?? defaultMaxQueued;
  }

  push(segment: TraceSegment): void {
    this.#queued.push(segment);
    if (this.#queued.length >= this.#maxQueued) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }

  /** Sends every queued segment now (also at shutdown, so none is left behind). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queued;
    this.#queued = [];
    for (const segment of batch) emitSegment(this.#sender, segment);
  }
}
