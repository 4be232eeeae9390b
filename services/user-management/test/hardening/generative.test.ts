import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@canary/testkit';
import { buildApp, bodyLimit } from '../../src/app.js';
import { runMigrations } from '../../src/db/migrations.js';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.js';
import { verifyPassword } from '../../src/users/password-hash.js';
import { closedPort, testConfig } from '../support/helpers.js';

/**
 * A few thousand generated bodies, valid, odd and hostile, sent one after the other to POST and PUT /usermgmt/user
 * over real HTTP. Each answer must be 200 with an empty body or a 4xx kit error (never a 5xx); answers to valid
 * bodies are predicted from a model of the table. At the end the table, the outbox and GET /users must hold exactly
 * what the 200s said. bcrypt (cost 10, no knob) makes each accepted create cost ~100 ms, so valid creates are a small
 * share of the bodies.
 */

type Body = Record<string, unknown>;
type Kind = 'valid' | 'odd' | 'hostile';

interface Case {
  kind: Kind;
  /** The text sent, and its Content-Type. */
  text: string | Uint8Array;
  contentType: string;
  /** The object the text encodes, when it is one. */
  body?: Body;
  /** For hostile cases: the status they must get. */
  status?: number;
}

interface StoredUser {
  username: string;
  email: string;
  firstname: string;
  lastname: string;
  role: string;
  enabled: boolean;
  password: string;
  /** The account e-mail queued at create time. */
  mail: { firstname: string; email: string };
}

const json = 'application/json';
const specials = '!@#$%^&*';

const usernameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{2,19}$/);
const emailArb = fc.stringMatching(/^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[a-z0-9'+_-]{1,8})?@[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\.(com|org|example)$/);
/** Names as people write them, unicode and astral characters included, never blank and at most 20 code points. */
const nameArb = fc
  .array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', ' ', "'", '-', 'é', 'Ł', 'ß', '李', '😀', 'ﬁ', '\u00a0'), { minLength: 0, maxLength: 19 })
  .map((chars) => `M${chars.join('')}`);
const roleArb = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,50}$/);
const passwordArb = fc
  .tuple(
    fc.stringMatching(/^[a-z]{1,4}$/),
    fc.stringMatching(/^[A-Z]{1,4}$/),
    fc.stringMatching(/^[0-9]{1,4}$/),
    fc.constantFrom(...specials),
    fc.array(fc.constantFrom(...'aZ9!#é€😀-_.'), { maxLength: 12 }),
  )
  .map(([lower, upper, digits, special, rest]) => `${upper}${special}${lower}${rest.join('')}${digits}`)
  // At least 8 characters as the policy counts them: code points, so an astral character counts once.
  .map((password) => password + 'x'.repeat(Math.max(0, 8 - [...password].length)));

/** Any code point, controls, lone surrogates and astral ones included, with ASCII letters more often. */
const wildChar = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...'abcXYZ019 ._-@\'";%/\\') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
);
const wildString = fc.array(wildChar, { maxLength: 30 }).map((chars) => chars.join(''));

/** A few fixed names and addresses that generated bodies reuse, so duplicates happen. */
const takenNames = fc.sample(usernameArb, { numRuns: 25, seed: 7 });
const takenEmails = fc.sample(emailArb, { numRuns: 25, seed: 8 });
const someName = fc.oneof(fc.constantFrom(...takenNames), usernameArb);
const someEmail = fc.oneof(fc.constantFrom(...takenEmails), emailArb);

const createArb = fc.record(
  { username: someName, email: someEmail, firstname: nameArb, lastname: fc.oneof(fc.constant(''), nameArb), role: roleArb, enabled: fc.boolean(), password: passwordArb },
  { requiredKeys: ['username', 'email', 'firstname', 'password'] },
);
const updateArb = fc.record(
  { username: someName, email: someEmail, firstname: nameArb, lastname: fc.oneof(fc.constant(''), nameArb), role: roleArb, enabled: fc.boolean(), password: fc.string() },
  { requiredKeys: ['username', 'email', 'firstname'] },
);

/** Each field may be anything a string can hold: the answer is not predicted, only checked against the table. */
function oddArb(valid: fc.Arbitrary<Body>): fc.Arbitrary<Body> {
  return fc.tuple(valid, fc.record({ username: wildString, email: fc.oneof(wildString, wildString.map((s) => `${s}@example.com`)), firstname: wildString, lastname: wildString, role: wildString, password: wildString }, { requiredKeys: [] })).map(
    ([body, wild]) => ({ ...body, ...wild }),
  );
}

const wrongValue = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }));
const knownFields = new Set(['username', 'email', 'firstname', 'lastname', 'role', 'enabled', 'password']);

/** Changes that each make a body certainly wrong, with the status it must get. */
function hostileArb(valid: fc.Arbitrary<Body>, required: string[]): fc.Arbitrary<Case> {
  const asCase = (body: Body, status = 400): Case => ({ kind: 'hostile', text: JSON.stringify(body), contentType: json, body, status });
  return fc.oneof(
    fc.tuple(valid, fc.constantFrom(...required)).map(([body, field]) => {
      const { [field]: _dropped, ...rest } = body;
      return asCase(rest);
    }),
    // wrongValue holds no string, so it is wrong for every string field; a boolean becomes one for `enabled`.
    fc.tuple(valid, fc.constantFrom(...knownFields), wrongValue).map(([body, field, value]) =>
      asCase({ ...body, [field]: field === 'enabled' && typeof value === 'boolean' ? String(value) : value }),
    ),
    fc.tuple(valid, fc.string({ minLength: 1, maxLength: 20 }).filter((key) => !knownFields.has(key) && key !== '__proto__'), fc.jsonValue()).map(([body, key, value]) => asCase({ ...body, [key]: value })),
    fc.tuple(valid, fc.constantFrom('username', 'firstname', 'lastname', 'role', 'email'), fc.integer({ min: 1, max: 300 })).map(([body, field, extra]) => {
      const limits: Record<string, number> = { username: 20, firstname: 20, lastname: 20, role: 50, email: 254 };
      const long = field === 'email' ? `${'a'.repeat(64)}@${'b'.repeat(limits.email! - 68 + extra)}.com` : 'A'.repeat((limits[field] ?? 0) + extra);
      return asCase({ ...body, [field]: long });
    }),
    fc.tuple(valid, fc.constantFrom(' ', "'", '"', ';', '%', '/', '\\', 'ä', '😀', '\u200b'), fc.nat(15)).map(([body, bad, at]) => {
      const name = String(body.username).slice(0, 15);
      return asCase({ ...body, username: `${name.slice(0, at)}${bad}${name.slice(at)}` });
    }),
    fc.tuple(valid, fc.integer({ min: 0xd800, max: 0xdfff })).map(([body, surrogate]) => asCase({ ...body, firstname: `A${String.fromCharCode(surrogate)}` })),
    fc.tuple(valid, fc.nat()).map(([body, cut]) => {
      const text = JSON.stringify(body);
      return { kind: 'hostile' as const, text: text.slice(0, 1 + (cut % (text.length - 1))), contentType: json, status: 400 };
    }),
    fc.uint8Array({ minLength: 1, maxLength: 200 }).filter((bytes) => !Buffer.from(bytes).toString().trim().startsWith('{')).map((bytes) => ({ kind: 'hostile' as const, text: bytes, contentType: json, status: 400 })),
    fc.tuple(valid, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=z', 'application/jsonp')).map(([body, contentType]) => ({
      kind: 'hostile' as const,
      text: JSON.stringify(body),
      contentType,
      status: 415,
    })),
    fc.tuple(valid, fc.integer({ min: 1, max: 4096 })).map(([body, over]) => {
      const text = JSON.stringify({ ...body, padding: '' });
      return { kind: 'hostile' as const, text: text.replace('"padding":""', `"padding":"${'p'.repeat(bodyLimit - Buffer.byteLength(text) + over)}"`), contentType: json, status: 413 };
    }),
    fc.constantFrom('null', '[]', '"user"', '17', 'true', '{}').map((text) => ({ kind: 'hostile' as const, text, contentType: json, status: 400 })),
  );
}

function caseArb(valid: fc.Arbitrary<Body>, required: string[], weights: Record<Kind, number>): fc.Arbitrary<Case> {
  return fc.oneof(
    { weight: weights.valid, arbitrary: valid.map((body): Case => ({ kind: 'valid', text: JSON.stringify(body), contentType: json, body })) },
    { weight: weights.odd, arbitrary: oddArb(valid).map((body): Case => ({ kind: 'odd', text: JSON.stringify(body), contentType: json, body })) },
    { weight: weights.hostile, arbitrary: hostileArb(valid, required) },
  );
}

let db: TestDatabase;
let pool: DatabasePool;
let app: FastifyInstance;
let http: Pool;
/** What the table must hold, by lower-cased user name (names and e-mails compare case-insensitively). */
const model = new Map<string, StoredUser>();
const counts = { POST: new Map<number, number>(), PUT: new Map<number, number>() };

function ownerOfEmail(email: string): StoredUser | undefined {
  for (const user of model.values()) if (user.email.toLowerCase() === email.toLowerCase()) return user;
  return undefined;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

async function call(method: 'POST' | 'PUT' | 'GET', path: string, text?: string | Uint8Array, contentType?: string): Promise<Answer> {
  const res = await http.request({ method, path, body: text === undefined ? undefined : Buffer.from(text), headers: contentType ? { 'content-type': contentType } : {} });
  return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), text: await res.body.text() };
}

/** A 4xx with the kit's error body, whose message is returned. */
function errorMessage(answer: Answer): string {
  expect(answer.status).toBeGreaterThanOrEqual(400);
  expect(answer.status).toBeLessThan(500);
  expect(answer.contentType).toMatch(/^application\/json/);
  const body = JSON.parse(answer.text) as { statusCode: number; message: string; timestamp: string; status: string };
  expect(body).toMatchObject({ statusCode: answer.status, message: expect.any(String), status: expect.stringMatching(/^[A-Z_]+$/), timestamp: expect.any(String) });
  return body.message;
}

function expectedCreate(body: Body): { status: number; message?: string } {
  const username = String(body.username);
  const email = String(body.email);
  if (model.has(username.toLowerCase())) return { status: 400, message: `User with user name ${username} already exists!` };
  if (ownerOfEmail(email)) return { status: 400, message: `User with email ${email} already exists!` };
  return { status: 200 };
}

function expectedUpdate(body: Body): { status: number; message?: string } {
  const username = String(body.username);
  const user = model.get(username.toLowerCase());
  if (!user) return { status: 404, message: `User with user name ${username} doesn't exist!` };
  const owner = ownerOfEmail(String(body.email));
  if (owner && owner !== user) return { status: 400, message: `User with email ${String(body.email)} already exists!` };
  return { status: 200 };
}

function remember(method: 'POST' | 'PUT', body: Body): void {
  const username = String(body.username);
  if (method === 'POST') {
    model.set(username.toLowerCase(), {
      username,
      email: String(body.email),
      firstname: String(body.firstname),
      lastname: String(body.lastname ?? ''),
      role: String(body.role ?? 'ROLE_USER'),
      enabled: body.enabled === undefined ? true : Boolean(body.enabled),
      password: String(body.password),
      mail: { firstname: String(body.firstname), email: String(body.email) },
    });
  } else {
    const user = model.get(username.toLowerCase())!;
    Object.assign(user, { email: String(body.email), firstname: String(body.firstname), lastname: String(body.lastname ?? '') });
  }
}

/** Sends one case and checks its answer; keeps the model in step with every 200. */
async function exercise(method: 'POST' | 'PUT', sent: Case): Promise<void> {
  const answer = await call(method, '/usermgmt/user', sent.text, sent.contentType);
  const tally = counts[method];
  tally.set(answer.status, (tally.get(answer.status) ?? 0) + 1);
  const expected = sent.kind === 'valid' && sent.body ? (method === 'POST' ? expectedCreate(sent.body) : expectedUpdate(sent.body)) : undefined;
  if (answer.status === 200) {
    expect(answer.text).toBe('');
    expect(sent.kind, `a hostile body was accepted: ${String(sent.text).slice(0, 300)}`).not.toBe('hostile');
    if (expected) expect(expected.status).toBe(200);
    else if (method === 'POST') expect(expectedCreate(sent.body!).status, 'the table already holds this user').toBe(200);
    else expect(expectedUpdate(sent.body!).status, 'the table cannot take this update').toBe(200);
    remember(method, sent.body!);
    return;
  }
  const message = errorMessage(answer);
  if (expected) expect({ status: answer.status, message }).toEqual(expected);
  if (sent.status) expect(answer.status, `hostile ${String(sent.text).slice(0, 200)}`).toBe(sent.status);
  // An odd body refused as a duplicate must really collide with a stored user.
  const duplicate = /^User with (user name|email) (.*) already exists!$/.exec(message);
  if (duplicate) expect(duplicate[1] === 'email' ? ownerOfEmail(duplicate[2]!) : model.get(duplicate[2]!.toLowerCase())).toBeDefined();
}

beforeAll(async () => {
  db = await createTestDatabase('umgenerative');
  const config = testConfig(db.env, { NOTIFICATION_SERVICE_PORT: String(await closedPort()) });
  pool = createDatabasePool(config);
  await runMigrations(pool);
  // No dispatcher: the outbox rows are checked as the creates left them.
  app = buildApp(config, { logging: false, outbox: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  http = new Pool(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`, { connections: 1 });
});

afterAll(async () => {
  await http?.close();
  await app?.close();
  await pool?.end();
  await db?.drop();
});

describe('generated bodies', () => {
  it('POST /usermgmt/user: 2000 bodies, each answered 200 or 4xx as predicted, never 5xx', { timeout: 600_000 }, async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(caseArb(createArb, ['username', 'email', 'firstname', 'password'], { valid: 3, odd: 17, hostile: 30 }), async (generated) => {
        await exercise('POST', generated);
        if (++sent % 250 === 0) expect((await call('GET', '/usermgmt/health/ready')).status).toBe(200);
      }),
      { numRuns: 2000, endOnFailure: true },
    );
    expect(counts.POST.get(200) ?? 0).toBeGreaterThan(10);
  });

  it('PUT /usermgmt/user: 1500 bodies, each answered 200 or 4xx as predicted, never 5xx', { timeout: 600_000 }, async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(caseArb(updateArb, ['username', 'email', 'firstname'], { valid: 4, odd: 3, hostile: 3 }), async (generated) => {
        await exercise('PUT', generated);
        if (++sent % 250 === 0) expect((await call('GET', '/usermgmt/health/ready')).status).toBe(200);
      }),
      { numRuns: 1500, endOnFailure: true },
    );
    expect(counts.PUT.get(200) ?? 0).toBeGreaterThan(10);
    expect(counts.PUT.get(404) ?? 0).toBeGreaterThan(10);
  });

  it('leaves the table, the outbox and GET /usermgmt/users holding exactly what the 200s said', async () => {
    expect((await call('GET', '/usermgmt/health/ready')).status).toBe(200);
    const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM users');
    const stored = new Map(rows.map((row) => [String(row.username).toLowerCase(), row]));
    expect([...stored.keys()].sort()).toEqual([...model.keys()].sort());
    for (const [key, user] of model) {
      const row = stored.get(key)!;
      expect({ ...row, password: undefined }).toEqual({
        username: user.username,
        email: user.email,
        firstname: user.firstname,
        lastname: user.lastname,
        role: user.role,
        enabled: user.enabled ? 1 : 0,
        password: undefined,
      });
      expect(String(row.password)).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    }
    // bcrypt.compare costs as much as the hash: check a few, not all.
    for (const user of [...model.values()].slice(0, 5)) expect(await verifyPassword(user.password, String(stored.get(user.username.toLowerCase())!.password))).toBe(true);

    const [outbox] = await pool.query<RowDataPacket[]>('SELECT payload, status FROM notification_outbox ORDER BY id');
    expect(outbox.map((row) => [row.status, JSON.parse(String(row.payload))])).toEqual(
      [...model.values()].map((user) => [
        'pending',
        { subject: 'Stack Simplify account creation.', content: `Hello ${user.mail.firstname}, your stack simplify account is created successfully!`, toEmails: [user.mail.email] },
      ]),
    );

    const listed = await call('GET', '/usermgmt/users');
    expect(listed.status).toBe(200);
    const users = JSON.parse(listed.text) as { username: string }[];
    expect(users.map((user) => user.username).sort()).toEqual([...model.values()].map((user) => user.username).sort());
    console.log(`answers: POST ${JSON.stringify(Object.fromEntries(counts.POST))}, PUT ${JSON.stringify(Object.fromEntries(counts.PUT))}; ${model.size} users`);
  });
});
