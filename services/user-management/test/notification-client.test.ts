import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type Dispatcher } from 'undici';
import { createNotificationClient, NotificationError, type NotificationClientSettings } from '../src/notification-client.js';

const seen: IncomingHttpHeaders[] = [];
const server = createServer((request, response) => {
  seen.push(request.headers);
  if (request.url === '/notification/info') {
    // Just over the client's 1 MiB limit.
    response.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(1_048_577));
    return;
  }
  response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
});
let settings: NotificationClientSettings;

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  settings = {
    NOTIFICATION_SERVICE_HOST: '127.0.0.1',
    NOTIFICATION_SERVICE_PORT: (server.address() as AddressInfo).port,
    NOTIFICATION_CONNECT_TIMEOUT_MS: 1000,
    NOTIFICATION_RESPONSE_TIMEOUT_MS: 1000,
  };
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('createNotificationClient', () => {
  it('sends through a dispatcher it is given (tracing, connection policy) and closes it', async () => {
    const agent = new Agent();
    const tagged = agent.compose((dispatch: Dispatcher.Dispatch) => (options, handler) => dispatch({ ...options, headers: { ...(options.headers as Record<string, string>), 'x-wrapped': 'yes' } }, handler));
    const client = createNotificationClient(settings, { dispatcher: tagged });
    const answer = await client.get('/notification/health-status');
    expect([answer.statusCode, answer.contentType, answer.body.toString()]).toEqual([200, 'text/plain', 'ok']);
    expect(seen.at(-1)?.['x-wrapped']).toBe('yes');
    await client.close();
    expect(agent.closed).toBe(true);
  });

  it('refuses an answer over 1 MiB as unavailable', async () => {
    const client = createNotificationClient(settings);
    const failure = await client.get('/notification/info').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(NotificationError);
    expect(failure).toMatchObject({ kind: 'unavailable', message: 'Notification service unavailable: response larger than 1048576 bytes' });
    await client.close();
  });
});
