import { createSocket } from 'node:dgram';
import { once } from 'node:events';

/** The header every datagram to the X-Ray daemon starts with, followed by a newline and one document. */
export const xrayProtocolHeader = '{"format":"json","version":1}';

/** A segment or subsegment document as the SDK sends it (only the fields tests read are typed). */
export interface XrayDocument {
  id: string;
  name: string;
  trace_id: string;
  parent_id?: string;
  /** "subsegment" for a subsegment sent on its own (large traces); absent for a segment. */
  type?: 'subsegment';
  start_time: number;
  end_time?: number;
  in_progress?: boolean;
  namespace?: string;
  error?: boolean;
  fault?: boolean;
  throttle?: boolean;
  http?: {
    request?: { method?: string; url?: string; client_ip?: string; user_agent?: string; x_forwarded_for?: boolean; traced?: boolean };
    response?: { status?: number; content_length?: number };
  };
  sql?: Record<string, unknown>;
  cause?: { exceptions?: { message?: string; type?: string }[]; working_directory?: string; id?: string };
  subsegments?: XrayDocument[];
  [key: string]: unknown;
}

export interface XrayDaemon {
  /** The address for AWS_XRAY_DAEMON_ADDRESS, e.g. `127.0.0.1:41234`. */
  address: string;
  port: number;
  /** Every document received, in arrival order. */
  documents: XrayDocument[];
  /** Datagrams that were not a protocol header plus a JSON document, with the reason. */
  malformed: string[];
  /** Top-level segments received, optionally only those named `name` or in trace `traceId`. */
  segments(filter?: SegmentFilter): XrayDocument[];
  /** Resolves with the matching segments once at least `count` have arrived; rejects after `timeoutMs`. */
  waitForSegments(count: number, filter?: SegmentFilter, timeoutMs?: number): Promise<XrayDocument[]>;
  /**
   * Every subsegment below `segment`, at any depth: those embedded in it and those the SDK streamed in
   * separate datagrams (it does so once a segment holds more than 100 subsegments).
   */
  subsegmentsOf(segment: XrayDocument): XrayDocument[];
  /** Forgets what was received so far. */
  clear(): void;
  close(): Promise<void>;
}

export interface SegmentFilter {
  name?: string;
  traceId?: string;
}

function parseDatagram(message: Buffer): XrayDocument | string {
  const text = message.toString('utf8');
  const newline = text.indexOf('\n');
  if (newline < 0) return 'no newline after the header';
  const header = text.slice(0, newline);
  try {
    const parsed: unknown = JSON.parse(header);
    if (JSON.stringify(parsed) !== xrayProtocolHeader) return `unexpected header ${header}`;
  } catch {
    return `header is not JSON: ${header}`;
  }
  try {
    const document = JSON.parse(text.slice(newline + 1)) as XrayDocument;
    if (typeof document.id !== 'string' || typeof document.trace_id !== 'string') return 'document without id or trace_id';
    return document;
  } catch {
    return 'document is not JSON';
  }
}

function matches(document: XrayDocument, filter: SegmentFilter = {}): boolean {
  return (
    document.type !== 'subsegment' &&
    (filter.name === undefined || document.name === filter.name) &&
    (filter.traceId === undefined || document.trace_id === filter.traceId)
  );
}

function embedded(document: XrayDocument): XrayDocument[] {
  return (document.subsegments ?? []).flatMap((child) => [child, ...embedded(child)]);
}

/**
 * A real UDP socket on 127.0.0.1 and a free port playing the X-Ray daemon: it parses what the SDK sends
 * (`{"format":"json","version":1}` + newline + one document per datagram) and keeps every document.
 */
export async function startXrayDaemon(): Promise<XrayDaemon> {
  const documents: XrayDocument[] = [];
  const malformed: string[] = [];
  const waiters = new Set<() => void>();
  const socket = createSocket('udp4');

  socket.on('message', (message) => {
    const parsed = parseDatagram(message);
    if (typeof parsed === 'string') malformed.push(parsed);
    else documents.push(parsed);
    for (const wake of waiters) wake();
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  // Hundreds of concurrent requests arrive as a burst of datagrams: room for them while the test is busy.
  socket.setRecvBufferSize(4 * 1024 * 1024);
  const port = socket.address().port;

  const daemon: XrayDaemon = {
    address: `127.0.0.1:${port}`,
    port,
    documents,
    malformed,
    segments(filter) {
      return documents.filter((document) => matches(document, filter));
    },
    waitForSegments(count, filter, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = daemon.segments(filter);
          if (found.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `expected ${count} segment(s) ${JSON.stringify(filter ?? {})} within ${timeoutMs} ms, got ` +
                `${daemon.segments(filter).length} (${documents.length} documents in all, ${malformed.length} malformed)`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    subsegmentsOf(segment) {
      const found = embedded(segment);
      const ids = new Set([segment.id, ...found.map((sub) => sub.id)]);
      // Streamed subsegments name their parent by id; a streamed parent may arrive after its children.
      let grew = true;
      while (grew) {
        grew = false;
        for (const document of documents) {
          if (document.type === 'subsegment' && document.parent_id && ids.has(document.parent_id) && !ids.has(document.id)) {
            for (const sub of [document, ...embedded(document)]) {
              ids.add(sub.id);
              found.push(sub);
            }
            grew = true;
          }
        }
      }
      return found;
    },
    clear() {
      documents.length = 0;
      malformed.length = 0;
    },
    close() {
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
  return daemon;
}
