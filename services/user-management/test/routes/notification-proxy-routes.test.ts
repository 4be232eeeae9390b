import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { closedPort, startFakeNotification, testConfig, type FakeNotification } from '../support/helpers.js';

// These routes never touch the database: the app points at a closed port for it, which also shows they do not need it.
let fake: FakeNotification;
let app: FastifyInstance;
let refusedApp: FastifyInstance;
let refusedPort: number;

beforeAll(async () => {
  fake = await startFakeNotification();
  const dbPort = String(await closedPort());
  const db = { DB_HOSTNAME: '127.0.0.1', DB_PORT: dbPort };
  app = buildApp(testConfig(db, { NOTIFICATION_SERVICE_PORT: String(fake.port), NOTIFICATION_RESPONSE_TIMEOUT_MS: '300' }), { logging: false, outbox: false });
  refusedPort = await closedPort();
  refusedApp = buildApp(testConfig(db, { NOTIFICATION_SERVICE_PORT: String(refusedPort) }), { logging: false, outbox: false });
});

afterAll(async () => {
  await app?.close();
  await refusedApp?.close();
  await fake?.close();
});

describe('notification proxy routes', () => {
  it('return the notification service\'s answer: status, content type and body', async () => {
    fake.behaviour = 'ok';
    const health = await app.inject({ url: '/usermgmt/notification-health-status' });
    expect([health.statusCode, health.headers['content-type'], health.body]).toEqual([200, 'text/plain; charset=utf-8', 'Notification Service is UP and Running - V2']);
    const info = await app.inject({ url: '/usermgmt/notification-service-info' });
    expect([info.statusCode, info.headers['content-type'], info.body]).toEqual([200, 'text/plain; charset=utf-8', 'IP: 10.0.0.7\nHostname: fake-0\nVersion: V2']);
    const xray = await app.inject({ url: '/usermgmt/notification-xray' });
    expect([xray.statusCode, xray.headers['content-type']]).toEqual([200, 'application/json; charset=utf-8']);
    expect(xray.json()).toEqual({ applicationname: 'Notification Microservice', appversion: 'V2', message: 'Enabled AWS XRay' });
    // The connection pool's own probes (GET /notification/health/ready) are not proxied calls.
    const proxied = fake.requests.filter((r) => r.url !== '/notification/health/ready');
    expect(proxied.slice(-3).map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /notification/health-status',
      'GET /notification/info',
      'GET /notification/xray',
    ]);
  });

  it('pass an error status of the notification service through as it came', async () => {
    fake.behaviour = 'fail';
    const res = await app.inject({ url: '/usermgmt/notification-xray' });
    expect([res.statusCode, res.headers['content-type'], res.body]).toEqual([503, 'application/json', '{"status":"DOWN"}']);
    fake.behaviour = 'ok';
  });

  it('answer 502 JSON when the connection is refused', async () => {
    for (const path of ['/usermgmt/notification-health-status', '/usermgmt/notification-service-info', '/usermgmt/notification-xray']) {
      const res = await refusedApp.inject({ url: path });
      expect(res.statusCode).toBe(502);
      expect(res.json()).toMatchObject({
        status: 'BAD_GATEWAY',
        statusCode: 502,
        message: `Notification service unavailable: connect ECONNREFUSED 127.0.0.1:${refusedPort}`,
      });
    }
  });

  it('answer 502 JSON when the connection is reset', async () => {
    fake.behaviour = 'reset';
    const res = await app.inject({ url: '/usermgmt/notification-xray' });
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ status: 'BAD_GATEWAY', statusCode: 502 });
    expect(res.json<{ message: string }>().message).toMatch(/^Notification service unavailable: /);
    fake.behaviour = 'ok';
  });

  it('answer 504 JSON when the notification service does not answer in time', async () => {
    fake.behaviour = 'hang';
    const res = await app.inject({ url: '/usermgmt/notification-xray' });
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({
      status: 'GATEWAY_TIMEOUT',
      statusCode: 504,
      message: 'Notification service timed out: no response within 300 ms',
      debugMessage: `Calling http://127.0.0.1:${fake.port}/notification/xray`,
    });
    fake.behaviour = 'ok';
    const after = await app.inject({ url: '/usermgmt/notification-xray' });
    expect(after.statusCode).toBe(200);
  });
});
