import type { FastifyInstance } from 'fastify';
import { startSmtpServer, type TestSmtpServer } from '@canary/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, validMail } from '../support.js';

interface ExpectedSubError {
  field: string;
  message: string;
  rejectedValue?: unknown;
}

const long = (n: number): string => 'x'.repeat(n);
const addressOfLength = (n: number): string => `${'a'.repeat(n - '@example.com'.length)}@example.com`;
const manyAddresses = (n: number, prefix = 'user'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}@example.com`);

/** Each body is invalid for one reason (or a few, to check they are all reported) and must never reach the mail server. */
const cases: { name: string; body: unknown; subErrors: ExpectedSubError[] }[] = [
  {
    name: 'empty object',
    body: {},
    subErrors: [
      { field: 'subject', message: 'is required' },
      { field: 'content', message: 'is required' },
      { field: 'toEmails', message: 'is required' },
    ],
  },
  { name: 'JSON array instead of an object', body: [validMail], subErrors: [{ field: 'body', message: 'must be object' }] },
  { name: 'missing subject', body: { ...validMail, subject: undefined }, subErrors: [{ field: 'subject', message: 'is required' }] },
  { name: 'empty subject', body: { ...validMail, subject: '' }, subErrors: [{ field: 'subject', message: 'must NOT have fewer than 1 characters', rejectedValue: '' }] },
  {
    name: 'subject over 255 characters',
    body: { ...validMail, subject: long(256) },
    subErrors: [{ field: 'subject', message: 'must NOT have more than 255 characters', rejectedValue: `${long(256).slice(0, 100)}…` }],
  },
  { name: 'numeric subject', body: { ...validMail, subject: 42 }, subErrors: [{ field: 'subject', message: 'must be string', rejectedValue: 42 }] },
  { name: 'null subject', body: { ...validMail, subject: null }, subErrors: [{ field: 'subject', message: 'must be string' }] },
  { name: 'missing content', body: { ...validMail, content: undefined }, subErrors: [{ field: 'content', message: 'is required' }] },
  { name: 'boolean content', body: { ...validMail, content: true }, subErrors: [{ field: 'content', message: 'must be string', rejectedValue: true }] },
  {
    name: 'content over 50 000 characters',
    body: { ...validMail, content: long(50_001) },
    subErrors: [{ field: 'content', message: 'must NOT have more than 50000 characters', rejectedValue: `${long(50_001).slice(0, 100)}…` }],
  },
  { name: 'missing toEmails', body: { ...validMail, toEmails: undefined }, subErrors: [{ field: 'toEmails', message: 'is required' }] },
  { name: 'empty toEmails', body: { ...validMail, toEmails: [] }, subErrors: [{ field: 'toEmails', message: 'must NOT have fewer than 1 items' }] },
  {
    name: 'toEmails as a string',
    body: { ...validMail, toEmails: 'a@example.com' },
    subErrors: [{ field: 'toEmails', message: 'must be array', rejectedValue: 'a@example.com' }],
  },
  { name: 'null toEmails', body: { ...validMail, toEmails: null }, subErrors: [{ field: 'toEmails', message: 'must be array' }] },
  {
    name: 'invalid addresses in toEmails',
    body: { ...validMail, toEmails: ['ok@example.com', 'not-an-address', 'a@b', 'two@@example.com', 'sp ace@example.com'] },
    subErrors: [
      { field: 'toEmails.1', message: 'must match format "email"', rejectedValue: 'not-an-address' },
      { field: 'toEmails.2', message: 'must match format "email"', rejectedValue: 'a@b' },
      { field: 'toEmails.3', message: 'must match format "email"', rejectedValue: 'two@@example.com' },
      { field: 'toEmails.4', message: 'must match format "email"', rejectedValue: 'sp ace@example.com' },
    ],
  },
  { name: 'a number in toEmails', body: { ...validMail, toEmails: [7] }, subErrors: [{ field: 'toEmails.0', message: 'must be string', rejectedValue: 7 }] },
  {
    name: 'an address over 254 characters',
    body: { ...validMail, toEmails: [addressOfLength(255)] },
    subErrors: [{ field: 'toEmails.0', message: 'must NOT have more than 254 characters', rejectedValue: `${addressOfLength(255).slice(0, 100)}…` }],
  },
  {
    name: '51 addresses in toEmails',
    body: { ...validMail, toEmails: manyAddresses(51) },
    subErrors: [{ field: 'toEmails', message: 'must NOT have more than 50 items' }],
  },
  {
    name: 'invalid address in ccEmails',
    body: { ...validMail, ccEmails: ['cc@example.com', 'cc-at-example.com'] },
    subErrors: [{ field: 'ccEmails.1', message: 'must match format "email"', rejectedValue: 'cc-at-example.com' }],
  },
  {
    name: 'ccEmails as a string',
    body: { ...validMail, ccEmails: 'cc@example.com' },
    subErrors: [{ field: 'ccEmails', message: 'must be array', rejectedValue: 'cc@example.com' }],
  },
  {
    name: '51 addresses in ccEmails',
    body: { ...validMail, ccEmails: manyAddresses(51, 'cc') },
    subErrors: [{ field: 'ccEmails', message: 'must NOT have more than 50 items' }],
  },
  {
    name: 'bccEmails as an object',
    body: { ...validMail, bccEmails: { address: 'bcc@example.com' } },
    subErrors: [{ field: 'bccEmails', message: 'must be array' }],
  },
  {
    name: 'invalid address in bccEmails',
    body: { ...validMail, bccEmails: [''] },
    subErrors: [{ field: 'bccEmails.0', message: 'must match format "email"', rejectedValue: '' }],
  },
  {
    name: '51 addresses in bccEmails',
    body: { ...validMail, bccEmails: manyAddresses(51, 'bcc') },
    subErrors: [{ field: 'bccEmails', message: 'must NOT have more than 50 items' }],
  },
  {
    name: 'fields the service does not know',
    body: { ...validMail, from: 'boss@example.com', replyTo: 'x@example.com' },
    subErrors: [
      { field: 'from', message: 'is not an accepted field' },
      { field: 'replyTo', message: 'is not an accepted field' },
    ],
  },
];

describe('POST /notification/send rejects bad input with a 400 that names each problem', () => {
  let smtp: TestSmtpServer;
  let app: FastifyInstance;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
  });
  afterAll(async () => {
    // Nothing invalid may have been sent: every case is rejected before the mail server is contacted.
    expect(smtp.messages).toEqual([]);
    await app.close();
    await smtp.close();
  });

  it.each(cases)('$name', async ({ body, subErrors }) => {
    const res = await app.inject({ method: 'POST', url: '/notification/send', payload: body as object });
    expect(res.statusCode).toBe(400);
    const json = res.json();
    expect(json).toEqual({
      status: 'BAD_REQUEST',
      statusCode: 400,
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      message: 'Validation error',
      debugMessage: subErrors.map((s) => `${s.field} ${s.message}`).join('; '),
      subErrors: subErrors.map((s) => ({ object: 'body', ...s })),
    });
  });

  it('counts distinct recipients over the three lists: more than 50 is a 400', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/notification/send',
      payload: { ...validMail, toEmails: manyAddresses(20, 'to'), ccEmails: manyAddresses(20, 'cc'), bccEmails: manyAddresses(11, 'bcc') },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      status: 'BAD_REQUEST',
      statusCode: 400,
      timestamp: expect.any(String),
      message: 'Too many recipients: 51 distinct addresses in toEmails, ccEmails and bccEmails together, at most 50 allowed',
      debugMessage: null,
    });
  });

  it('a request without a body is a 400 asking for an object', async () => {
    const res = await app.inject({ method: 'POST', url: '/notification/send' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'Validation error', subErrors: [{ object: 'body', field: 'body', message: 'must be object' }] });
  });

  it('malformed JSON is a 400', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/notification/send',
      headers: { 'content-type': 'application/json' },
      payload: '{"subject": "x", ',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ status: 'BAD_REQUEST', statusCode: 400, message: 'Malformed JSON request' });
  });

  it('an empty JSON body is a 400', async () => {
    const res = await app.inject({ method: 'POST', url: '/notification/send', headers: { 'content-type': 'application/json' }, payload: '' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, message: 'The request body is empty; send a JSON object' });
  });

  it('a body that is not JSON is a 415', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/notification/send',
      headers: { 'content-type': 'text/plain' },
      payload: 'subject=x',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ status: 'UNSUPPORTED_MEDIA_TYPE', statusCode: 415, message: 'Unsupported content type; send application/json' });
  });

  it('a body over 256 KiB is a 413', async () => {
    const payload = JSON.stringify({ ...validMail, content: long(256 * 1024) });
    const res = await app.inject({ method: 'POST', url: '/notification/send', headers: { 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({
      status: 'PAYLOAD_TOO_LARGE',
      statusCode: 413,
      message: 'The request body is larger than the limit of 262144 bytes',
    });
  });

  it('invalid UTF-8 is a 400', async () => {
    const payload = Buffer.concat([Buffer.from('{"subject":"'), Buffer.from([0xc3, 0x28]), Buffer.from('","content":"x","toEmails":["a@example.com"]}')]);
    const res = await app.inject({ method: 'POST', url: '/notification/send', headers: { 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, message: 'The request body is not valid UTF-8' });
  });

  it('GET on the send path is a 404, not a send', async () => {
    const res = await app.inject({ method: 'GET', url: '/notification/send' });
    expect(res.statusCode).toBe(404);
  });
});
