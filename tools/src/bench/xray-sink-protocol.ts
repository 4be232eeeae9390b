export interface SinkReport {
  datagrams: number;
  bytes: number;
  /** Datagrams parsed (a sample) and how many of those were not `{"format":"json",...}\n{segment}`. */
  parsed: number;
  malformed: number;
  /** Segment names among the parsed sample. */
  names: Record<string, number>;
}

export type SinkMessage = { type: 'report'; reset: boolean };

export type SinkReply = { type: 'listening'; port: number } | { type: 'report'; report: SinkReport };
