import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { buildApp } from '../../src/app.js';
import { databaseUnavailableMessage } from '../../src/db/database-errors.js';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { runMigrations } from '../../src/db/migrations.js';
import { closedPort, eventually, startFakeNotification, testConfig, validUser, type FakeNotification } from '../support/helpers.js';
import { startPrivateMariadb, type PrivateMariadb } from '../support/mariadb-server.js';

type Json = Record<string, unknown>;

function expectUnavailable(res: { statusCode: number; json<T>(): T }): void {
  expect(res.statusCode).toBe(503);
  expect(res.json<Json>()).toMatchObject({ status: 'SERVICE_UNAVAILABLE', statusCode: 503, message: databaseUnavailableMessage });
}

const apiCalls = [
  { method: 'GET', url: '/usermgmt/users' },
  { method: 'GET', url: '/usermgmt/user/microtest1' },
  { method: 'POST', url: '/usermgmt/user', payload: validUser },
  { method: 'PUT', url: '/usermgmt/user', payload: validUser },
  { method: 'DELETE', url: '/usermgmt/user/microtest1' },
  { method: 'GET', url: '/usermgmt/status/microtest1' },
] as const;

describe('with no database listening', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    const port = await closedPort();
    app = buildApp(testConfig({ DB_HOSTNAME: '127.0.0.1', DB_PORT: String(port) }, { NOTIFICATION_SERVICE_PORT: String(await closedPort()) }), { logging: false });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
  });

  it('builds and starts, answers every API route 503 with a clear error, readiness 503 and liveness 200', async () => {
    for (const call of apiCalls) {
      const res = await app.inject({ method: call.method, url: call.url, ...('payload' in call ? { payload: call.payload } : {}) });
      expectUnavailable(res);
      expect(res.json<Json>().debugMessage).toBe('The database did not answer (ECONNREFUSED)');
    }
    const ready = await app.inject({ url: '/usermgmt/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'DOWN', reason: 'the database is unavailable (ECONNREFUSED)' });
    expect((await app.inject({ url: '/usermgmt/health/live' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/usermgmt/health-status' })).statusCode).toBe(200);
  });

  it('still answers 400 to bad input without asking the database', async () => {
    const res = await app.inject({ method: 'POST', url: '/usermgmt/user', payload: { ...validUser, password: 'weak' } });
    expect([res.statusCode, res.json<Json>().message]).toEqual([400, 'User Password is invalid']);
  });
});

describe('when the database stops and comes back', () => {
  let mariadb: PrivateMariadb;
  let fake: FakeNotification;
  let app: FastifyInstance;
  let probe: DatabasePool;

  beforeAll(async () => {
    mariadb = await startPrivateMariadb();
    fake = await startFakeNotification();
    const config = testConfig(
      { DB_HOSTNAME: '127.0.0.1', DB_PORT: String(mariadb.port), DB_USERNAME: 'root', DB_PASSWORD: '', DB_NAME: 'usermgmt' },
      { NOTIFICATION_SERVICE_PORT: String(fake.port) },
    );
    const admin = createDatabasePool({ ...config, DB_NAME: 'mysql' });
    await admin.query('CREATE DATABASE usermgmt');
    await admin.end();
    const migrator = createDatabasePool(config);
    await runMigrations(migrator);
    await migrator.end();
    probe = createDatabasePool(config);
    app = buildApp(config, { logging: false });
    await app.ready();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await probe?.end();
    await fake?.close();
    await mariadb?.destroy();
  });

  it('answers 503 during the outage and recovers by itself, e-mails included', async () => {
    expect((await app.inject({ method: 'POST', url: '/usermgmt/user', payload: validUser })).statusCode).toBe(200);
    await fake.waitForDeliveries(1);
    // The fake has the e-mail before the outbox records it; the outage starts once the record is in, so that this
    // test sees the API's recovery (the outbox test covers a record that fails).
    await eventually(async () => {
      const [rows] = await probe.query<RowDataPacket[]>('SELECT status FROM notification_outbox');
      return rows.length === 1 && rows[0]?.status === 'sent' ? true : undefined;
    });
    expect((await app.inject({ url: '/usermgmt/health/ready' })).statusCode).toBe(200);

    await mariadb.stop();
    for (const call of apiCalls) {
      const res = await app.inject({ method: call.method, url: call.url, ...('payload' in call ? { payload: { ...call.payload, username: 'during', email: 'during@example.com' } } : {}) });
      expectUnavailable(res);
    }
    const notReady = await app.inject({ url: '/usermgmt/health/ready' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({ status: 'DOWN' });
    expect((await app.inject({ url: '/usermgmt/health/live' })).statusCode).toBe(200);

    await mariadb.start();
    const users = await eventually(async () => {
      const res = await app.inject({ url: '/usermgmt/users' });
      return res.statusCode === 200 ? res.json<Json[]>() : undefined;
    });
    expect(users.map((user) => user.username)).toEqual(['microtest1']);
    expect((await app.inject({ url: '/usermgmt/health/ready' })).statusCode).toBe(200);
    const created = await app.inject({ method: 'POST', url: '/usermgmt/user', payload: { ...validUser, username: 'after', email: 'after@example.com' } });
    expect(created.statusCode).toBe(200);
    await fake.waitForDeliveries(2);
    expect((fake.sent() as { toEmails: string[] }[]).map((message) => message.toEmails[0])).toEqual(['microtest1@example.com', 'after@example.com']);
  });
});
