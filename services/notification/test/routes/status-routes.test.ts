import { hostname, networkInterfaces } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appVersions } from '../../src/config.js';
import { startApp } from '../support.js';

/** Computed here from the OS, independently of the service's own helper. */
function expectedAddress(): string {
  const candidates = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
  return candidates[0] ?? '127.0.0.1';
}

describe.each(appVersions)('status routes of %s', (version) => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await startApp({ APP_VERSION: version });
  });
  afterAll(() => app.close());

  it('GET /notification/health-status answers the course text with the version', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/health-status' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.body).toBe(`Notification Service is UP and Running - ${version}`);
  });

  it('GET /notification/info lists the IP address, host name and version, one per line', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/info' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.body).toBe(`IP Address: ${expectedAddress()}\nHostname: ${hostname()}\nApplication Version: ${version}\n`);
  });

  it('GET /notification/xray answers the application name, version and message', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/xray' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.body).toBe(`{"applicationname":"Notification Microservice","appversion":"${version}","message":"Enabled AWS XRay"}`);
  });

  it('GET /notification/health/live is UP', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/health/live' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'UP' });
  });

  it('GET /notification/health/ready is UP with the version', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'UP', version });
  });

  it('a path with a trailing slash is the same route, as in the original', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/xray/' });
    expect([res.statusCode, res.json()]).toEqual([200, { applicationname: 'Notification Microservice', appversion: version, message: 'Enabled AWS XRay' }]);
  });

  it('an unknown route is a 404 JSON error', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({
      status: 'NOT_FOUND',
      statusCode: 404,
      message: 'No route GET /notification/nothing',
    });
  });
});

describe('readiness while shutting down', () => {
  it('answers 503 DOWN once the lifecycle says the process is shutting down, while liveness stays UP', async () => {
    const app = await startApp();
    try {
      app.lifecycle.shuttingDown = true;
      const ready = await app.inject({ method: 'GET', url: '/notification/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: 'DOWN', reason: 'shutting down' });
      const live = await app.inject({ method: 'GET', url: '/notification/health/live' });
      expect(live.statusCode).toBe(200);
      expect(live.json()).toEqual({ status: 'UP' });
    } finally {
      await app.close();
    }
  });
});
