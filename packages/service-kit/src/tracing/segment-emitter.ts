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
