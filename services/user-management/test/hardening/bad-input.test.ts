import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { buildApp, bodyLimit } from '../../src/app.js';
import { runMigrations } from '../../src/db/migrations.js';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { startFakeNotification, testConfig, validUser, type FakeNotification } from '../support/helpers.js';
import { expectKitError, fieldsOf, parseRaw, rawHttp, send } from '@canary/testkit';

/**
 * Bad input on every route, over real HTTP against the real app and MariaDB: each gets the kit's JSON error with a
 * 4xx status, and after every test the users and notification_outbox tables are exactly as they were.
 */

let db: TestDatabase;
let pool: DatabasePool;
let app: FastifyInstance;
let fake: FakeNotification;
let origin: string;
let port: number;
let snapshot: Tables;

interface Tables {
  users: RowDataPacket[];
  outbox: RowDataPacket[];
}

async function tables(): Promise<Tables> {
  const [users] = await pool.query<RowDataPacket[]>('SELECT * FROM users ORDER BY username');
  const [outbox] = await pool.query<RowDataPacket[]>('SELECT * FROM notification_outbox ORDER BY id');
  return { users, outbox };
}

const other = { ...validUser, username: 'other.user', email: 'other.user@example.com', firstname: 'Other' };
/** A user nobody created: a create of it succeeds unless something in the body is wrong. */
const fresh = { ...validUser, username: 'fresh-user', email: 'fresh@example.com', firstname: 'Fresh' };
/** An update of microtest1 that would change it, unless something in the body is wrong. */
const change = { username: validUser.username, email: 'changed@example.com', firstname: 'Changed', lastname: 'Changed' };

const json = 'application/json';
const post = (body: unknown, contentType = json) => send(origin, 'POST', '/usermgmt/user', { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), contentType });
const put = (body: unknown, contentType = json) => send(origin, 'PUT', '/usermgmt/user', { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), contentType });
/** The body with `bytes` spliced into the firstname value, to send bytes no JSON text can hold. */
function withBytes(text: string, bytes: number[]): Buffer {
  const [before = '', after = ''] = text.replace(/"firstname":"[^"]*"/, '"firstname":"A<bytes>"').split('<bytes>');
  return Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
}

const writes = [
  ['POST', post, fresh],
  ['PUT', put, change],
] as const;

beforeAll(async () => {
  db = await createTestDatabase('umbadinput');
  fake = await startFakeNotification();
  const config = testConfig(db.env, { NOTIFICATION_SERVICE_PORT: String(fake.port) });
  pool = createDatabasePool(config);
  await runMigrations(pool);
  // No dispatcher: the outbox rows the two creates leave stay exactly as they are, so any change is the test's doing.
  app = buildApp(config, { logging: false, outbox: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  origin = `http://127.0.0.1:${port}`;
  for (const user of [validUser, other]) expect((await post(user)).status).toBe(200);
  snapshot = await tables();
  expect(snapshot.users).toHaveLength(2);
  expect(snapshot.outbox).toHaveLength(2);
});

/** Puts the snapshot back, so one failure does not make every later test fail too. */
async function restore(): Promise<void> {
  await pool.query('DELETE FROM users');
  await pool.query('DELETE FROM notification_outbox');
  for (const row of snapshot.users) await pool.query('INSERT INTO users SET ?', [row]);
  for (const row of snapshot.outbox) await pool.query('INSERT INTO notification_outbox SET ?', [row]);
}

afterEach(async () => {
  const now = await tables();
  if (JSON.stringify(now) !== JSON.stringify(snapshot)) await restore();
  expect(now, 'the users and notification_outbox tables changed').toEqual(snapshot);
});

afterAll(async () => {
  await app?.close();
  await pool?.end();
  await fake?.close();
  await db?.drop();
});

describe.each(writes)('%s /usermgmt/user with a body that is not a usable JSON object', (method, write, good) => {
  const goodText = JSON.stringify(good);
  it.each<[string, string | Buffer, string]>([
    ['malformed JSON', '{"username": "x",', 'Malformed JSON request'],
    ['trailing garbage', `${goodText} {}`, 'Malformed JSON request'],
    ['single quotes', "{'username':'x'}", 'Malformed JSON request'],
    ['a JSON comment', `/* hi */${goodText}`, 'Malformed JSON request'],
    ['an empty body', '', 'The request body is empty; send a JSON object'],
    ['a prototype-polluting __proto__ key', `{"__proto__":{"role":"ROLE_ADMIN"},${goodText.slice(1)}`, 'Malformed JSON request'],
    ['a constructor.prototype key', `{"constructor":{"prototype":{"role":"x"}},${goodText.slice(1)}`, 'Malformed JSON request'],
    ['UTF-16 text', Buffer.from(goodText, 'utf16le'), 'Malformed JSON request'],
    ['invalid UTF-8 in a string', withBytes(goodText, [0xff, 0xfe]), 'The request body is not valid UTF-8'],
    ['an overlong UTF-8 encoding of "/"', withBytes(goodText, [0xc0, 0xaf]), 'The request body is not valid UTF-8'],
    ['a UTF-8 encoded surrogate', withBytes(goodText, [0xed, 0xa0, 0x80]), 'The request body is not valid UTF-8'],
    ['a lone surrogate escape', goodText.replace(/"firstname":"[^"]*"/, '"firstname":"A\\ud800"'), 'The request body is not valid Unicode: a \\u escape encodes a lone surrogate'],
    ['a lone surrogate escape in a key', `{"x\\udc00":1,${goodText.slice(1)}`, 'The request body is not valid Unicode: a \\u escape encodes a lone surrogate'],
  ])('%s: 400', async (_what, body, message) => {
    expectKitError(await write(body), 400, message);
  });

  it.each<[string, string]>([
    ['null', 'null'],
    ['an array', `[${goodText}]`],
    ['a string', JSON.stringify(goodText)],
    ['a number', '1'],
    ['true', 'true'],
  ])('%s instead of an object: 400 naming the body', async (_what, body) => {
    const error = expectKitError(await write(body), 400, 'Validation error');
    expect(error.subErrors).toEqual([expect.objectContaining({ object: 'body', field: 'body', message: 'must be object' })]);
  });

  it('an array nested 5000 deep in a field: 400 naming the field', async () => {
    const nested = JSON.stringify({ ...good, username: 0 }).replace('"username":0', `"username":${'['.repeat(5000)}${']'.repeat(5000)}`);
    const error = expectKitError(await write(nested), 400, 'Validation error');
    expect(fieldsOf(error)).toContain('username');
  });

  it(`one byte over the ${bodyLimit}-byte limit: 413, and far over it (1 MiB, and chunked): 413`, async () => {
    const limitMessage = `The request body is larger than the limit of ${bodyLimit} bytes`;
    const padded = (size: number): string => {
      const text = JSON.stringify({ ...good, lastname: '' });
      return text.replace('"lastname":""', `"lastname":"${'x'.repeat(size - Buffer.byteLength(text))}"`);
    };
    expect(Buffer.byteLength(padded(bodyLimit + 1))).toBe(bodyLimit + 1);
    expectKitError(await write(padded(bodyLimit + 1)), 413, limitMessage);
    expectKitError(await write(padded(1024 * 1024)), 413, limitMessage);
    const big = padded(64 * 1024);
    async function* chunks(): AsyncIterable<Buffer> {
      for (let i = 0; i < big.length; i += 4096) yield Buffer.from(big.slice(i, i + 4096));
    }
    expectKitError(await send(origin, method, '/usermgmt/user', { body: Readable.from(chunks()), contentType: json }), 413, limitMessage);
  });

  it.each([
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=xyz',
    'application/xml',
    'application/json-patch+json',
    'application/jsonx',
    'text/json',
  ])('a valid body sent as %s: 415', async (contentType) => {
    expectKitError(await write(goodText, contentType), 415, 'Unsupported content type; send application/json');
  });

  it('a valid body with no Content-Type at all: 415', async () => {
    expectKitError(await send(origin, method, '/usermgmt/user', { body: goodText }), 415, 'Unsupported content type; send application/json');
  });
});

/** Field changes that make a body wrong, and the fields the 400 must name. Applied to both the create and the update. */
const wrongFields: [string, Record<string, unknown>, string[]][] = [
  ['username missing', { username: undefined }, ['username']],
  ['email missing', { email: undefined }, ['email']],
  ['firstname missing', { firstname: undefined }, ['firstname']],
  ['username null', { username: null }, ['username']],
  ['email null', { email: null }, ['email']],
  ['firstname null', { firstname: null }, ['firstname']],
  ['lastname null', { lastname: null }, ['lastname']],
  ['role null', { role: null }, ['role']],
  ['enabled null', { enabled: null }, ['enabled']],
  ['username a number', { username: 12345 }, ['username']],
  ['email a boolean', { email: true }, ['email']],
  ['firstname an array', { firstname: ['Micro'] }, ['firstname']],
  ['lastname an object', { lastname: { text: 'x' } }, ['lastname']],
  ['role a number', { role: 5 }, ['role']],
  ['enabled the string "true"', { enabled: 'true' }, ['enabled']],
  ['enabled the number 1', { enabled: 1 }, ['enabled']],
  ['username empty', { username: '' }, ['username', 'username']],
  ['email empty', { email: '' }, ['email']],
  ['firstname empty', { firstname: '' }, ['firstname']],
  ['role empty', { role: '' }, ['role', 'role']],
  ['username 21 characters', { username: 'u'.repeat(21) }, ['username']],
  ['email 255 characters', { email: `${'e'.repeat(60)}@${'d'.repeat(190)}.com` }, ['email']],
  ['firstname 21 characters', { firstname: 'F'.repeat(21) }, ['firstname']],
  ['firstname 21 emoji', { firstname: '😀'.repeat(21) }, ['firstname']],
  ['firstname 10 000 characters', { firstname: 'F'.repeat(10_000) }, ['firstname']],
  ['lastname 21 characters', { lastname: 'L'.repeat(21) }, ['lastname']],
  ['role 51 characters', { role: 'R'.repeat(51) }, ['role']],
  ['firstname only spaces', { firstname: '    ' }, ['firstname']],
  ['firstname with NUL', { firstname: 'a\u0000b' }, ['firstname']],
  ['lastname with a newline', { lastname: 'x\ny' }, ['lastname']],
  ['an extra field', { id: 1 }, ['id']],
  ['two extra fields', { isAdmin: true, passwordHash: '$2b$10$abc' }, ['isAdmin', 'passwordHash']],
  ['username with a quote', { username: "a'b" }, ['username']],
  ['username with SQL', { username: "x' OR '1'='1" }, ['username']],
  ['username with a semicolon', { username: 'a;b' }, ['username']],
  ['username with a percent sign', { username: 'ab%' }, ['username']],
  ['username with an underscore wildcard first', { username: '_ab' }, ['username']],
  ['username ../x', { username: '../x' }, ['username']],
  ['username with a slash', { username: 'a/b' }, ['username']],
  ['username with a backslash', { username: 'a\\b' }, ['username']],
  ['username ..', { username: '...' }, ['username']],
  ['username with a space', { username: 'a b' }, ['username']],
  ['username with a trailing space', { username: `${validUser.username} ` }, ['username']],
  ['username with a zero-width space', { username: 'ab\u200bc' }, ['username']],
  ['username in unicode', { username: 'üser' }, ['username']],
  ['username with an emoji', { username: 'user😀' }, ['username']],
  ['email with a quote in the domain', { email: "a@b'.com" }, ['email']],
  ['email with a space', { email: 'a b@example.com' }, ['email']],
  ['email with a newline', { email: 'a@example.com\nBcc: x@example.com' }, ['email']],
  ['email in unicode', { email: 'ü@example.com' }, ['email']],
];

describe.each(writes)('%s /usermgmt/user with a wrong field', (method, write, good) => {
  it.each(wrongFields)('%s: 400 naming it', async (_what, changes, fields) => {
    const body: Record<string, unknown> = { ...good, ...changes };
    for (const [key, value] of Object.entries(changes)) if (value === undefined) delete body[key];
    const error = expectKitError(await write(body), 400, 'Validation error');
    expect(fieldsOf(error)).toEqual(fields);
    expect(error.debugMessage).toBe(error.subErrors?.map((sub) => `${sub.field} ${sub.message}`).join('; '));
  });

  if (method === 'POST') {
    it.each<[string, unknown]>([
      ['missing', undefined],
      ['null', null],
      ['a number', 12345678],
    ])('password %s: 400 naming it', async (_what, password) => {
      const body: Record<string, unknown> = { ...good, password };
      if (password === undefined) delete body.password;
      expect(fieldsOf(expectKitError(await write(body), 400, 'Validation error'))).toEqual(['password']);
    });

    it.each([
      ['empty', ''],
      ['73 bytes', `Pass@123${'x'.repeat(65)}`],
      ['10 000 characters', `Pass@123${'x'.repeat(9992)}`],
      ['with SQL', "x' OR '1'='1"],
    ])('password %s: 400 "User Password is invalid"', async (_what, password) => {
      expectKitError(await write({ ...good, password }), 400, 'User Password is invalid');
    });

    it('a user name or e-mail taken in another case: 400 naming it', async () => {
      expectKitError(await write({ ...good, username: validUser.username.toUpperCase() }), 400, `User with user name ${validUser.username.toUpperCase()} already exists!`);
      expectKitError(await write({ ...good, email: other.email.toUpperCase() }), 400, `User with email ${other.email.toUpperCase()} already exists!`);
    });
  } else {
    it('password of the wrong type: 400 naming it, although it is ignored', async () => {
      expect(fieldsOf(expectKitError(await write({ ...good, password: 12345678 }), 400, 'Validation error'))).toEqual(['password']);
    });

    it("an unknown user, or another user's e-mail in another case: 404 and 400", async () => {
      expectKitError(await write({ ...good, username: 'nobody-here' }), 404, "User with user name nobody-here doesn't exist!");
      expectKitError(await write({ ...good, email: other.email.toUpperCase() }), 400, `User with email ${other.email.toUpperCase()} already exists!`);
    });
  }
});

const patternError = 'Validation error';
/** Path segments as sent on the wire (already percent-encoded where a client would encode). */
const badSegments: [string, string, number, string][] = [
  ['a quote', "a'b", 400, patternError],
  ['SQL', '%27%20OR%20%271%27%3D%271', 400, patternError],
  ['a semicolon', 'a;b', 400, patternError],
  ['an encoded semicolon', 'a%3Bb', 400, patternError],
  ['a stray percent sign', '%', 400, 'Malformed URL: the path is not valid percent-encoding'],
  ['a bad escape', 'ab%zz', 400, 'Malformed URL: the path is not valid percent-encoding'],
  ['an encoded percent sign', 'ab%25', 400, patternError],
  ['an encoded slash', 'a%2Fb', 400, patternError],
  ['only an encoded slash', '%2F', 400, patternError],
  ['encoded ../', '..%2F..%2Fetc%2Fpasswd', 400, patternError],
  ['..', '..', 400, patternError],
  ['encoded ..', '%2E%2E', 400, patternError],
  ['a trailing space', `${validUser.username}%20`, 400, patternError],
  ['a trailing newline', `${validUser.username}%0A`, 400, patternError],
  ['NUL', 'ab%00c', 400, patternError],
  ['unicode', '%C3%BC%C3%BCx', 400, patternError],
  ['an emoji', '%F0%9F%98%80ab', 400, patternError],
  ['a lone surrogate in UTF-8 form', 'ab%ED%A0%80', 400, 'Malformed URL: the path is not valid percent-encoding'],
  ['21 characters', 'a'.repeat(21), 400, patternError],
  ['101 characters', 'a'.repeat(101), 414, 'A path segment is longer than 100 characters'],
];

describe.each([
  ['GET', '/usermgmt/user/'],
  ['DELETE', '/usermgmt/user/'],
  ['GET', '/usermgmt/status/'],
])('%s %s{username} with a hostile user name', (method, prefix) => {
  it.each(badSegments)('%s (%s): %i', async (_what, segment, status, message) => {
    const error = expectKitError(await send(origin, method, `${prefix}${segment}`), status, message);
    if (message === patternError) expect(new Set(fieldsOf(error))).toEqual(new Set(['username']));
  });

  it('20 000 characters, larger than the header limit: 431', async () => {
    const answer = parseRaw(await rawHttp(port, `${method} ${prefix}${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
    expectKitError(answer, 431, 'The request line and headers are larger than the limit of 16384 bytes');
  });

  it.each(['a--', 'x.y_z-1', 'nobody'])('a valid name nobody has, %s: 404', async (name) => {
    expectKitError(await send(origin, method, `${prefix}${name}`), 404, `User with user name ${name} doesn't exist!`);
  });
});

describe('the other routes ignore what they do not read', () => {
  const reads: [string, number, string][] = [
    ['/usermgmt/users', 200, json],
    ['/usermgmt/health-status', 200, 'text/plain'],
    ['/usermgmt/health/live', 200, json],
    ['/usermgmt/health/ready', 200, json],
    ['/usermgmt/notification-health-status', 200, 'text/plain'],
    ['/usermgmt/notification-service-info', 200, 'text/plain'],
    ['/usermgmt/notification-xray', 200, json],
  ];

  it.each(reads)('GET %s with a junk query string and a text body: %i, as without them', async (path, status, type) => {
    const plain = await send(origin, 'GET', path);
    const junk = await send(origin, 'GET', `${path}?%&a=%zz&__proto__[role]=x&username=%27--&${'q'.repeat(2000)}=1`, { body: 'DROP TABLE users', contentType: 'text/plain' });
    expect([junk.status, junk.contentType.startsWith(type)]).toEqual([status, true]);
    expect(junk.text).toBe(plain.text);
  });

  it.each<[string, string]>([
    ['POST', '/usermgmt/users'],
    ['PATCH', '/usermgmt/user'],
    ['PUT', `/usermgmt/user/${validUser.username}`],
    ['POST', `/usermgmt/status/${validUser.username}`],
    ['DELETE', '/usermgmt/users'],
    ['OPTIONS', '/usermgmt/user'],
    ['GET', '/usermgmt/user'],
    ['GET', '/usermgmt/%25'],
    ['GET', '/usermgmt/users/../user/microtest1'],
    ['GET', '/USERMGMT/users'],
  ])('%s %s: 404', async (method, path) => {
    expectKitError(await send(origin, method, path, { body: JSON.stringify(validUser), contentType: json }), 404, `No route ${method} ${path}`);
  });

  it('a request that is not HTTP: 400', async () => {
    expectKitError(parseRaw(await rawHttp(port, 'HELLO there\r\n\r\n')), 400, 'Malformed HTTP request');
  });

  it('a header larger than the limit: 431', async () => {
    const answer = parseRaw(await rawHttp(port, `GET /usermgmt/users HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`));
    expectKitError(answer, 431, 'The request line and headers are larger than the limit of 16384 bytes');
  });
});

describe('metacharacters that are valid are stored as written, never interpreted', () => {
  it('creates, reads, updates, toggles and deletes users whose names and e-mails hold SQL and LIKE characters', async () => {
    const users = [
      { ...fresh, username: 'a--', email: "o'brien+x--@example.com", firstname: "'; DROP TABLE users;", lastname: '%_\\' },
      { ...fresh, username: 'a-_', email: 'a%b_c@example.com', firstname: '" OR ""="', lastname: '/* */ --' },
    ];
    for (const user of users) expect((await post(user)).status).toBe(200);
    try {
      for (const user of users) {
        const got = await send(origin, 'GET', `/usermgmt/user/${user.username}`);
        expect(got.status).toBe(200);
        expect(JSON.parse(got.text)).toMatchObject({ username: user.username, email: user.email, firstname: user.firstname, lastname: user.lastname });
      }
      // `_` and `%` are LIKE wildcards: were a name matched with LIKE, a-_ would also find a--.
      expect((await send(origin, 'GET', '/usermgmt/status/a-_')).status).toBe(200);
      const [rows] = await pool.query<RowDataPacket[]>('SELECT username, enabled FROM users WHERE username IN (?, ?)', ['a--', 'a-_']);
      expect(Object.fromEntries(rows.map((r) => [r.username, r.enabled]))).toEqual({ 'a--': 1, 'a-_': 0 });
      expect((await put({ username: 'a--', email: "x'--@example.com", firstname: 'Robert', lastname: "'); --" })).status).toBe(200);
      expect(JSON.parse((await send(origin, 'GET', '/usermgmt/user/a--')).text)).toMatchObject({ email: "x'--@example.com", lastname: "'); --" });
    } finally {
      for (const user of users) expect((await send(origin, 'DELETE', `/usermgmt/user/${user.username}`)).status).toBe(200);
      await pool.query('DELETE FROM notification_outbox WHERE id > ?', [snapshot.outbox.at(-1)?.id]);
    }
  });
});
