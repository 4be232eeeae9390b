import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import Fastify from 'fastify';
import { buildApp, bodyLimit } from '../../src/app.js';
import { userRoutes } from '../../src/routes/user-routes.js';
import type { UsersRepository } from '../../src/users/users-repository.js';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { runMigrations } from '../../src/db/migrations.js';
import { verifyPassword } from '../../src/users/password-hash.js';
import { serviceVersion } from '../../src/version.js';
import { closedPort, testConfig, validUser } from '../support/helpers.js';

let db: TestDatabase;
let pool: DatabasePool;
let app: FastifyInstance;

beforeAll(async () => {
  db = await createTestDatabase('umroutes');
  const config = testConfig(db.env, { NOTIFICATION_SERVICE_PORT: String(await closedPort()) });
  pool = createDatabasePool(config);
  await runMigrations(pool);
  // No dispatcher: these tests read the outbox rows the routes leave behind.
  app = buildApp(config, { logging: false, outbox: false });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await pool?.end();
  await db?.drop();
});

beforeEach(async () => {
  await pool.query('DELETE FROM users');
  await pool.query('DELETE FROM notification_outbox');
});

type Body = Record<string, unknown>;

function post(payload: unknown) {
  return app.inject({ method: 'POST', url: '/usermgmt/user', payload: payload as Body });
}
function put(payload: unknown) {
  return app.inject({ method: 'PUT', url: '/usermgmt/user', payload: payload as Body });
}

interface ExpectedSubError {
  object: string;
  field: string;
  message: string;
  rejectedValue?: unknown;
}

function expectError(res: LightMyRequestResponse, statusCode: number, message: string, subErrors?: ExpectedSubError[]): void {
  expect(res.statusCode).toBe(statusCode);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<Body>();
  expect(body.statusCode).toBe(statusCode);
  expect(body.message).toBe(message);
  expect(typeof body.status).toBe('string');
  expect(new Date(String(body.timestamp)).toISOString()).toBe(body.timestamp);
  if (subErrors) expect(body.subErrors).toEqual(subErrors);
  else expect(body.subErrors).toBeUndefined();
}

async function storedRows(): Promise<RowDataPacket[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM users ORDER BY username');
  return rows;
}
async function outboxRows(): Promise<RowDataPacket[]> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM notification_outbox ORDER BY id');
  return rows;
}

const publicUser = (over: Body = {}) => ({
  username: validUser.username,
  email: validUser.email,
  role: validUser.role,
  enabled: true,
  firstname: validUser.firstname,
  lastname: validUser.lastname,
  appversion: serviceVersion,
  ...over,
});

describe('POST /usermgmt/user', () => {
  it('creates the user with a bcrypt hash and an outbox e-mail, answering 200 with an empty body', async () => {
    const res = await post(validUser);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    const [row, ...others] = await storedRows();
    expect(others).toHaveLength(0);
    expect(row).toMatchObject({ username: 'microtest1', email: 'microtest1@example.com', role: 'ROLE_ADMIN', enabled: 1, firstname: 'MicroFName', lastname: 'MicroLname' });
    expect(String(row?.password)).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(await verifyPassword('Pass@123', String(row?.password))).toBe(true);
    const outbox = await outboxRows();
    expect(outbox).toHaveLength(1);
    expect(outbox[0]).toMatchObject({ kind: 'account-created', status: 'pending', attempts: 0, sent_at: null, last_error: null });
    expect(JSON.parse(String(outbox[0]?.payload))).toEqual({
      subject: 'Stack Simplify account creation.',
      content: 'Hello MicroFName, your stack simplify account is created successfully!',
      toEmails: ['microtest1@example.com'],
    });
  });

  it('defaults role to ROLE_USER, enabled to true and lastname to empty', async () => {
    const { role: _r, enabled: _e, lastname: _l, ...minimal } = validUser;
    expect((await post(minimal)).statusCode).toBe(200);
    const res = await app.inject({ url: '/usermgmt/user/microtest1' });
    expect(res.json()).toEqual(publicUser({ role: 'ROLE_USER', enabled: true, lastname: '' }));
  });

  it('refuses a taken user name, a taken e-mail, and names the user name when both are taken', async () => {
    expect((await post(validUser)).statusCode).toBe(200);
    expectError(await post({ ...validUser, email: 'other@example.com' }), 400, 'User with user name microtest1 already exists!');
    expectError(await post({ ...validUser, username: 'microtest2' }), 400, 'User with email microtest1@example.com already exists!');
    expectError(await post(validUser), 400, 'User with user name microtest1 already exists!');
    // E-mails compare case-insensitively, as mail systems do.
    expectError(await post({ ...validUser, username: 'microtest3', email: 'MicroTest1@Example.com' }), 400, 'User with email MicroTest1@Example.com already exists!');
    expect(await storedRows()).toHaveLength(1);
    expect(await outboxRows()).toHaveLength(1);
  });

  it.each([
    ['too short', 'Pa@1abc'],
    ['no digit', 'Pass@word'],
    ['no lower-case letter', 'PASS@123'],
    ['no upper-case letter', 'pass@123'],
    ['no special character', 'Pass1234'],
    ['a space', 'Pass @123'],
    ['a tab', 'Pass\t@123'],
    ['more than 72 bytes', `Pass@123${'x'.repeat(65)}`],
    ['empty', ''],
  ])('refuses a password with %s: "User Password is invalid", nothing stored', async (_what, password) => {
    expectError(await post({ ...validUser, password }), 400, 'User Password is invalid');
    expect(await storedRows()).toHaveLength(0);
    expect(await outboxRows()).toHaveLength(0);
  });

  it.each([
    ['the shortest', 'Pass@123'],
    ['every special character', 'Aa1!@#$%^&*'],
    ['other characters too', 'Pässwört1?A#'],
    ['exactly 72 bytes', `Pass@123${'x'.repeat(64)}`],
  ])('accepts a password with %s', async (_what, password) => {
    expect((await post({ ...validUser, password })).statusCode).toBe(200);
    const [row] = await storedRows();
    expect(await verifyPassword(password, String(row?.password))).toBe(true);
  });

  const body = (field: string, message: string, rejectedValue?: unknown): ExpectedSubError =>
    rejectedValue === undefined ? { object: 'body', field, message } : { object: 'body', field, message, rejectedValue };

  it.each<[string, Body, ExpectedSubError[]]>([
    ['username missing', { username: undefined }, [body('username', 'is required')]],
    ['username too short', { username: 'ab' }, [body('username', 'must NOT have fewer than 3 characters', 'ab')]],
    ['username too long', { username: 'a'.repeat(21) }, [body('username', 'must NOT have more than 20 characters', 'a'.repeat(21))]],
    ['username with SQL', { username: "a'; DROP TABLE users" }, [body('username', 'must match pattern "^[A-Za-z0-9][A-Za-z0-9._-]*$"', "a'; DROP TABLE users")]],
    ['username with a path', { username: '../etc' }, [body('username', 'must match pattern "^[A-Za-z0-9][A-Za-z0-9._-]*$"', '../etc')]],
    ['username a number', { username: 12345 }, [body('username', 'must be string', 12345)]],
    ['email missing', { email: undefined }, [body('email', 'is required')]],
    ['email empty', { email: '' }, [body('email', 'must match format "email"', '')]],
    ['email invalid', { email: 'not-an-email' }, [body('email', 'must match format "email"', 'not-an-email')]],
    ['email null', { email: null }, [body('email', 'must be string')]],
    // The error handler echoes at most 100 characters of a rejected value.
    ['email too long', { email: `${'a'.repeat(64)}@${'b'.repeat(186)}.com` }, [body('email', 'must NOT have more than 254 characters', `${'a'.repeat(64)}@${'b'.repeat(35)}…`)]],
    ['firstname missing', { firstname: undefined }, [body('firstname', 'is required')]],
    ['firstname empty', { firstname: '' }, [body('firstname', 'must NOT have fewer than 1 characters', '')]],
    ['firstname blank', { firstname: '   ' }, [body('firstname', 'must match pattern "^$|^(?=.*\\S)[^\\u0000-\\u001F\\u007F]+$"', '   ')]],
    ['firstname too long', { firstname: 'F'.repeat(21) }, [body('firstname', 'must NOT have more than 20 characters', 'F'.repeat(21))]],
    ['firstname with a newline', { firstname: 'Micro\nName' }, [body('firstname', 'must match pattern "^$|^(?=.*\\S)[^\\u0000-\\u001F\\u007F]+$"', 'Micro\nName')]],
    ['lastname too long', { lastname: 'L'.repeat(21) }, [body('lastname', 'must NOT have more than 20 characters', 'L'.repeat(21))]],
    ['lastname with NUL', { lastname: 'a\u0000b' }, [body('lastname', 'must match pattern "^[^\\u0000-\\u001F\\u007F]*$"', 'a\u0000b')]],
    ['role empty', { role: '' }, [body('role', 'must NOT have fewer than 1 characters', ''), body('role', 'must match pattern "^[A-Za-z0-9_.:-]+$"', '')]],
    ['role too long', { role: 'R'.repeat(51) }, [body('role', 'must NOT have more than 50 characters', 'R'.repeat(51))]],
    ['role with spaces', { role: 'ROLE ADMIN' }, [body('role', 'must match pattern "^[A-Za-z0-9_.:-]+$"', 'ROLE ADMIN')]],
    ['enabled a string', { enabled: 'true' }, [body('enabled', 'must be boolean', 'true')]],
    ['password missing', { password: undefined }, [body('password', 'is required')]],
    ['password a number', { password: 12345678 }, [body('password', 'must be string')]],
    ['an unknown field', { admin: true }, [body('admin', 'is not an accepted field')]],
  ])('rejects %s with a 400 naming the field, storing nothing', async (_what, change, subErrors) => {
    const payload: Body = { ...validUser, ...change };
    for (const [key, value] of Object.entries(change)) if (value === undefined) delete payload[key];
    expectError(await post(payload), 400, 'Validation error', subErrors);
    expect(await storedRows()).toHaveLength(0);
  });

  it('keeps unicode names intact, counting characters not bytes', async () => {
    expect((await post({ ...validUser, firstname: 'Zoë 😀'.padEnd(20, 'é'), lastname: "O'Brien-Łukasz" })).statusCode).toBe(200);
    const res = await app.inject({ url: '/usermgmt/user/microtest1' });
    expect(res.json()).toMatchObject({ firstname: 'Zoë 😀'.padEnd(20, 'é'), lastname: "O'Brien-Łukasz" });
  });

  it('answers 400 to malformed JSON, a non-object, an empty body and invalid UTF-8', async () => {
    const send = (payload: string | Buffer) => app.inject({ method: 'POST', url: '/usermgmt/user', headers: { 'content-type': 'application/json' }, payload });
    expectError(await send('{"username": "x",'), 400, 'Malformed JSON request');
    expectError(await send('[1,2]'), 400, 'Validation error', [{ object: 'body', field: 'body', message: 'must be object' }]);
    expectError(await send(''), 400, 'The request body is empty; send a JSON object');
    expectError(await send(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 400, 'The request body is not valid UTF-8');
    expect(await storedRows()).toHaveLength(0);
  });

  it('answers 415 to another content type and 413 to a body over the limit', async () => {
    const form = await app.inject({ method: 'POST', url: '/usermgmt/user', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'username=abc' });
    expectError(form, 415, 'Unsupported content type; send application/json');
    const huge = await post({ ...validUser, lastname: 'x'.repeat(bodyLimit) });
    expectError(huge, 413, `The request body is larger than the limit of ${bodyLimit} bytes`);
    expect(bodyLimit).toBe(16_384);
    expect(await storedRows()).toHaveLength(0);
  });
});

describe('concurrent creates', () => {
  it('of the same user give exactly one 200 and one 400, never a 500', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    for (let round = 0; round < 5; round++) {
      const user = { ...validUser, username: `racer${round}`, email: `racer${round}@example.com` };
      const responses = await Promise.all(
        [0, 1].map(() => fetch(`${address}/usermgmt/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) })),
      );
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 400]);
      const loser = responses.find((r) => r.status === 400);
      expect(((await loser?.json()) as Body).message).toBe(`User with user name racer${round} already exists!`);
    }
    for (let round = 0; round < 5; round++) {
      const responses = await Promise.all(
        ['a', 'b'].map((suffix) =>
          fetch(`${address}/usermgmt/user`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ...validUser, username: `mail${round}${suffix}`, email: `same${round}@example.com` }),
          }),
        ),
      );
      expect(responses.map((r) => r.status).sort()).toEqual([200, 400]);
      const loser = responses.find((r) => r.status === 400);
      expect(((await loser?.json()) as Body).message).toBe(`User with email same${round}@example.com already exists!`);
    }
    expect(await storedRows()).toHaveLength(10);
    expect(await outboxRows()).toHaveLength(10);
  });
});

describe('GET /usermgmt/users and /usermgmt/user/{username}', () => {
  it('lists users sorted by name with appversion and never a password', async () => {
    expect((await app.inject({ url: '/usermgmt/users' })).json()).toEqual([]);
    await post({ ...validUser, username: 'zed', email: 'zed@example.com' });
    await post(validUser);
    const res = await app.inject({ url: '/usermgmt/users' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([publicUser(), publicUser({ username: 'zed', email: 'zed@example.com' })]);
    expect(res.body).not.toMatch(/password|\$2b\$/);
  });

  it('sends the fields of the schema only, as JSON, even if the repository handed out more', async () => {
    const leaky = Fastify();
    const stored = { username: 'leaky', email: 'leaky@example.com', role: 'ROLE_USER', enabled: true, firstname: 'Lea', lastname: 'Ky' };
    const users = { list: async () => [{ ...stored, password: '$2b$10$notarealhashnotarealhashnotarealhashnotarealhashnot' }] };
    await leaky.register(userRoutes, { users: users as unknown as UsersRepository, appVersion: 'test', onUserCreated: () => undefined });
    try {
      const res = await leaky.inject({ url: '/users' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.body).toBe(JSON.stringify([{ ...stored, appversion: 'test' }]));
    } finally {
      await leaky.close();
    }
  });

  it('returns one user, 404 for an unknown one, 400 for an invalid name', async () => {
    await post(validUser);
    const res = await app.inject({ url: '/usermgmt/user/microtest1' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(publicUser());
    expectError(await app.inject({ url: '/usermgmt/user/nobody' }), 404, "User with user name nobody doesn't exist!");
    expectError(await app.inject({ url: '/usermgmt/user/ab' }), 400, 'Validation error', [
      { object: 'params', field: 'username', message: 'must NOT have fewer than 3 characters', rejectedValue: 'ab' },
    ]);
    expectError(await app.inject({ url: "/usermgmt/user/x'%20OR%20'1'='1" }), 400, 'Validation error', [
      { object: 'params', field: 'username', message: 'must match pattern "^[A-Za-z0-9][A-Za-z0-9._-]*$"', rejectedValue: "x' OR '1'='1" },
    ]);
  });
});

describe('PUT /usermgmt/user', () => {
  it('updates e-mail, first and last name only; role, enabled and password are ignored', async () => {
    await post(validUser);
    const [before] = await storedRows();
    const res = await put({ ...validUser, email: 'new@example.com', firstname: 'New', lastname: 'Name', role: 'ROLE_ROOT', enabled: false, password: 'Other@999' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toEqual(publicUser({ email: 'new@example.com', firstname: 'New', lastname: 'Name' }));
    const [after] = await storedRows();
    expect(after?.password).toBe(before?.password);
  });

  it('accepts an unchanged user and clears an omitted lastname', async () => {
    await post(validUser);
    expect((await put(validUser)).statusCode).toBe(200);
    const { lastname: _l, password: _p, role: _r, enabled: _e, ...minimal } = validUser;
    expect((await put(minimal)).statusCode).toBe(200);
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toEqual(publicUser({ lastname: '' }));
  });

  it('answers 404 for an unknown user and 400 for an e-mail another user has', async () => {
    await post(validUser);
    await post({ ...validUser, username: 'other', email: 'other@example.com' });
    expectError(await put({ ...validUser, username: 'nobody' }), 404, "User with user name nobody doesn't exist!");
    expectError(await put({ ...validUser, email: 'other@example.com' }), 400, 'User with email other@example.com already exists!');
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toEqual(publicUser());
  });

  it('validates its body as create does', async () => {
    await post(validUser);
    expectError(await put({ ...validUser, email: 'bad', firstname: '' }), 400, 'Validation error', [
      { object: 'body', field: 'email', message: 'must match format "email"', rejectedValue: 'bad' },
      { object: 'body', field: 'firstname', message: 'must NOT have fewer than 1 characters', rejectedValue: '' },
    ]);
    expectError(await put({ username: 'microtest1' }), 400, 'Validation error', [
      { object: 'body', field: 'email', message: 'is required' },
      { object: 'body', field: 'firstname', message: 'is required' },
    ]);
    expectError(await put({ ...validUser, id: 7 }), 400, 'Validation error', [{ object: 'body', field: 'id', message: 'is not an accepted field' }]);
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toEqual(publicUser());
  });
});

describe('DELETE /usermgmt/user/{username} and GET /usermgmt/status/{username}', () => {
  it('deletes a user, then 404', async () => {
    await post(validUser);
    const res = await app.inject({ method: 'DELETE', url: '/usermgmt/user/microtest1' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(await storedRows()).toHaveLength(0);
    expectError(await app.inject({ method: 'DELETE', url: '/usermgmt/user/microtest1' }), 404, "User with user name microtest1 doesn't exist!");
    expectError(await app.inject({ method: 'DELETE', url: '/usermgmt/user/a$b' }), 400, 'Validation error', [
      { object: 'params', field: 'username', message: 'must match pattern "^[A-Za-z0-9][A-Za-z0-9._-]*$"', rejectedValue: 'a$b' },
    ]);
  });

  it('toggles enabled on each call, 404 for an unknown user', async () => {
    await post(validUser);
    const first = await app.inject({ url: '/usermgmt/status/microtest1' });
    expect(first.statusCode).toBe(200);
    expect(first.body).toBe('');
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toMatchObject({ enabled: false });
    expect((await app.inject({ url: '/usermgmt/status/microtest1' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toMatchObject({ enabled: true });
    expectError(await app.inject({ url: '/usermgmt/status/nobody' }), 404, "User with user name nobody doesn't exist!");
  });

  it('does not toggle on HEAD', async () => {
    await post(validUser);
    expect((await app.inject({ method: 'HEAD', url: '/usermgmt/status/microtest1' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/usermgmt/user/microtest1' })).json()).toMatchObject({ enabled: true });
  });
});

describe('health and unknown routes', () => {
  it('answers the health routes', async () => {
    const status = await app.inject({ url: '/usermgmt/health-status' });
    expect(status.statusCode).toBe(200);
    expect(status.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(status.body).toBe(`User Management Service UP and RUNNING - ${serviceVersion}`);
    expect(serviceVersion).toMatch(/^\d+\.\d+\.\d+/);
    const live = await app.inject({ url: '/usermgmt/health/live' });
    expect([live.statusCode, live.json()]).toEqual([200, { status: 'UP' }]);
    const ready = await app.inject({ url: '/usermgmt/health/ready' });
    expect([ready.statusCode, ready.json()]).toEqual([200, { status: 'UP' }]);
  });

  it('takes a path with a trailing slash as the original did', async () => {
    const plain = await app.inject({ url: '/usermgmt/users' });
    const slashed = await app.inject({ url: '/usermgmt/users/' });
    expect([slashed.statusCode, slashed.json()]).toEqual([200, plain.json()]);
    expect((await app.inject({ url: '/usermgmt/health-status/' })).statusCode).toBe(200);
  });

  it('answers 404 JSON to an unknown route and a wrong method', async () => {
    expectError(await app.inject({ url: '/usermgmt/nothing' }), 404, 'No route GET /usermgmt/nothing');
    expectError(await app.inject({ method: 'PATCH', url: '/usermgmt/user' }), 404, 'No route PATCH /usermgmt/user');
  });
});
