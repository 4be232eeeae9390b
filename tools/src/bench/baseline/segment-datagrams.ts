import { createSocket } from 'node:dgram';
import { once } from 'node:events';

/**
 * What sending every request's segment costs at the least, with no tracer at all: the baseline's servers, given
 * BASELINE_XRAY_DAEMON_ADDRESS, send one datagram per request and hop to the sink, as a tracer sampling every request
 * must (the daemon reads one segment per datagram). Each datagram is a constant document of the size of our
 * services' segments, sent on a connected socket in batches as `SegmentQueue` sends ours: no ids drawn, no clock
 * read, no JSON written. The bench's "floor" scenarios run it; ours with every request sampled pays this plus its own
 * code.
 */
export type SendSegment = (datagram: Buffer) => void;

const protocolHeader = '{"format":"json","version":1}\n';
/**
 * The services' `defaultMaxQueued` and `defaultFlushMs`, written out rather than imported so that the bare back
 * replicas do not load the kit (fastify and all) and stay a reference for memory; the bench's test compares them.
 */
export const floorBatch = { maxQueued: 16, flushMs: 50 } as const;

/** Fixed ids and times: the sink checks the format and counts; only the size matters to the kernel. */
const traceId = '1-692f0000-5d1e0b3a9c7f2e4d6a8b0c1e';
const times = '"start_time":1764700000.123456,"end_time":1764700000.125678';
const aws = '"aws":{"xray":{"sdk":"X-Ray for Node.js","sdk_version":"3.12.0","package":"@canary/service-kit"}}';
const service = `"service":{"runtime":"node","runtime_version":"${process.version}"}`;

function document(json: string): Buffer {
  return Buffer.from(protocolHeader + json);
}

function incoming(url: string, status: number, length: number): string {
  return `"http":{"request":{"method":"GET","url":"${url}","client_ip":"127.0.0.1","user_agent":"autocannon"},"response":{"status":${status},"content_length":${length}}}`;
}

/** Documents shaped as our services' segments on each route, the size of theirs. */
export const floorDocuments = {
  /** User management's segment on /usermgmt/notification-xray, with the call's subsegment. */
  frontXray: document(
    `{"name":"User-Management-Microservice","id":"a1b2c3d4e5f60718",${times},${incoming('http://127.0.0.1:8095/usermgmt/notification-xray', 200, 93)},` +
      `"trace_id":"${traceId}",${service},${aws},"subsegments":[{"name":"notification-clusterip-service","id":"b1c2d3e4f5a60718",${times},` +
      `"http":{"request":{"method":"GET","url":"http://notification-clusterip-service:8096/notification/xray","traced":true},"response":{"status":200,"content_length":93}},"namespace":"remote"}]}`,
  ),
  /** User management's segment on /usermgmt/users, with the query's subsegment. */
  frontUsers: document(
    `{"name":"User-Management-Microservice","id":"c1d2e3f4a5b60718",${times},${incoming('http://127.0.0.1:8095/usermgmt/users', 200, 18_000)},` +
      `"trace_id":"${traceId}",${service},${aws},"subsegments":[{"name":"usermgmt@127.0.0.1","id":"d1e2f3a4b5c60718",${times},` +
      `"sql":{"url":"127.0.0.1:3306/usermgmt","user":"root","database_type":"MySQL","driver_version":"mysql2 3.15.0","preparation":"statement",` +
      `"sanitized_query":"SELECT username, email, role, enabled, firstname, lastname FROM users ORDER BY username"},"namespace":"remote"}]}`,
  ),
  /** A notification replica's segment on /notification/xray. */
  back: document(
    `{"name":"V1-Notification-Microservice","id":"e1f2a3b4c5d60718",${times},${incoming('http://notification-clusterip-service:8096/notification/xray', 200, 93)},` +
      `"trace_id":"${traceId}","parent_id":"b1c2d3e4f5a60718",${service},${aws}}`,
  ),
};

/** A sender to `address` (`host:port`, an IP address), or undefined when none is given. */
export async function segmentDatagrams(address: string | undefined): Promise<SendSegment | undefined> {
  if (!address) return undefined;
  const match = /^(.+):(\d+)$/.exec(address);
  if (!match) throw new Error(`BASELINE_XRAY_DAEMON_ADDRESS must be host:port, got ${address}`);
  const socket = createSocket('udp4');
  socket.connect(Number(match[2]), match[1]);
  await once(socket, 'connect');
  socket.unref();
  // A datagram the sink refuses (it has stopped) is lost, as a tracer's would be; it must not end the server.
  socket.on('error', () => undefined);
  let queued: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    const batch = queued;
    queued = [];
    for (const datagram of batch) socket.send(datagram);
  };
  return (datagram) => {
    queued.push(datagram);
    if (queued.length >= floorBatch.maxQueued) flush();
    else timer ??= setTimeout(flush, floorBatch.flushMs).unref();
  };
}
