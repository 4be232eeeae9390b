export interface SinkReport {
  datagrams: number;
  bytes: number;
  /**
   * Datagrams that reached the sink's socket while its receive buffer was full, and were dropped by the kernel (the
   * socket's `drops` in /proc/net/udp): sent by a service, never read. 0 where /proc/net/udp is missing.
   */
  dropped: number;
  /** Datagrams parsed (a sample) and how many of those were not `{"format":"json",...}\n{segment}`. */
  parsed: number;
  malformed: number;
  /** Segment names among the parsed sample. */
  names: Record<string, number>;
}

export type SinkMessage = { type: 'report'; reset: boolean };

export type SinkReply = { type: 'listening'; port: number } | { type: 'report'; report: SinkReport };
