import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { floorDocuments, segmentDatagrams } from './segment-datagrams.js';

/**
 * The baseline's notification replica: Node's bare `http` module answering the routes the chain uses with the same
 * bodies as the notification service. It names itself in the instance header, as the real replicas do, so the
 * connection policy of user management can work the same way against it.
 */
const version = process.env.BASELINE_VERSION === 'V2' ? 'V2' : 'V1';
const instance = process.env.BASELINE_INSTANCE ?? `baseline-${version}-${process.pid}`;
const instanceHeader = process.env.BASELINE_INSTANCE_HEADER ?? 'x-instance-id';

// Set only in the bench's floor scenarios: one datagram per traced request, as tracing every request needs at the least.
const sendSegment = await segmentDatagrams(process.env.BASELINE_XRAY_DAEMON_ADDRESS);
const traced = '/notification/xray';

const json = 'application/json; charset=utf-8';
const routes = new Map<string, { type: string; body: string }>([
  ['/notification/xray', { type: json, body: JSON.stringify({ applicationname: 'Notification Microservice', appversion: version, message: 'Enabled AWS XRay' }) }],
  ['/notification/health/ready', { type: json, body: JSON.stringify({ status: 'UP', version }) }],
  ['/notification/health/live', { type: json, body: JSON.stringify({ status: 'UP' }) }],
  ['/notification/health-status', { type: 'text/plain; charset=utf-8', body: `Notification Service is UP and Running - ${version}` }],
]);

const server = http.createServer((request, response) => {
  const route = request.method === 'GET' ? routes.get(request.url ?? '') : undefined;
  if (!route) {
    response.writeHead(404, { 'content-type': json, [instanceHeader]: instance });
    response.end('{"message":"not found"}');
    return;
  }
  response.writeHead(200, { 'content-type': route.type, 'content-length': Buffer.byteLength(route.body), [instanceHeader]: instance });
  response.end(route.body);
  if (request.url === traced) sendSegment?.(floorDocuments.back);
});
// Fastify's default, so idle keep-alive connections live as long as with the real services.
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', service: `baseline-back-${version}`, port: (server.address() as AddressInfo).port });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
