import http from 'node:http';
import type { AddressInfo } from 'node:net';
import mysql from 'mysql2';
import type { RowDataPacket } from 'mysql2/promise';
import { fileURLToPath } from 'node:url';
import { floorDocuments, segmentDatagrams } from './segment-datagrams.js';
import { userManagementPool } from './user-management-pool.js';

/**
 * The baseline's user management: Node's bare `http` module, no framework, no validation, no logging, no tracing.
 * It makes the same two calls as the real service (GET /notification/xray through the balancer with the same
 * connection policy; the same SELECT through a mysql2 pool with the same size) and answers with the same JSON.
 */
const env = process.env;
const appVersion = env.BASELINE_APP_VERSION ?? '1.0.0';
// NOTIFICATION_SERVICE_HOST/PORT and NOTIFICATION_CONNECTION_POLICY come in the environment, as for the real service.
const origin = `http://${env.NOTIFICATION_SERVICE_HOST}:${env.NOTIFICATION_SERVICE_PORT}`;
const { dispatcher, call } = await userManagementPool(fileURLToPath(new URL('../../../../', import.meta.url)), env);
// Set only in the bench's floor scenarios: one datagram per request, as tracing every request needs at the least.
const sendSegment = await segmentDatagrams(env.BASELINE_XRAY_DAEMON_ADDRESS);
const pool = mysql
  .createPool({
    host: env.DB_HOSTNAME ?? '127.0.0.1',
    port: Number(env.DB_PORT ?? 3306),
    database: env.DB_NAME,
    user: env.DB_USERNAME ?? 'root',
    password: env.DB_PASSWORD ?? '',
    connectionLimit: Number(env.DB_CONNECTION_LIMIT ?? 10),
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    supportBigNumbers: true,
  })
  .promise();

const json = 'application/json; charset=utf-8';

function reply(response: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

async function notificationXray(response: http.ServerResponse): Promise<void> {
  const answer = await call(dispatcher, { origin, method: 'GET', path: '/notification/xray', headers: { accept: '*/*' } });
  const type = answer.headers['content-type'];
  reply(response, answer.statusCode, typeof type === 'string' ? type : json, answer.body);
  sendSegment?.(floorDocuments.frontXray);
}

async function users(response: http.ServerResponse): Promise<void> {
  // The connection is taken before the query, as our service does: mysql2's pool.query would keep the rows alive
  // through young-generation collections (services/user-management/src/db/acquire-first.ts).
  const connection = await pool.getConnection();
  let rows: RowDataPacket[];
  try {
    [rows] = await connection.query<RowDataPacket[]>('SELECT username, email, role, enabled, firstname, lastname FROM users ORDER BY username');
  } finally {
    connection.release();
  }
  const list = rows.map((row) => ({
    username: String(row.username),
    email: String(row.email),
    role: String(row.role),
    enabled: Boolean(row.enabled),
    firstname: String(row.firstname),
    lastname: String(row.lastname),
    appversion: appVersion,
  }));
  reply(response, 200, json, JSON.stringify(list));
  sendSegment?.(floorDocuments.frontUsers);
}

const server = http.createServer((request, response) => {
  const work =
    request.url === '/usermgmt/notification-xray'
      ? notificationXray(response)
      : request.url === '/usermgmt/users'
        ? users(response)
        : request.url === '/usermgmt/health/ready'
          ? Promise.resolve(reply(response, 200, json, '{"status":"UP"}'))
          : Promise.resolve(reply(response, 404, json, '{"message":"not found"}'));
  work.catch((err: unknown) => {
    if (!response.headersSent) reply(response, 502, json, JSON.stringify({ message: err instanceof Error ? err.message : String(err) }));
    else response.destroy();
  });
});
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', service: 'baseline-front', port: (server.address() as AddressInfo).port });
});

async function stop(): Promise<void> {
  server.close();
  server.closeAllConnections();
  await Promise.allSettled([dispatcher.close(), pool.end()]);
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
