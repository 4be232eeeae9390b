import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { startSmtpServer, type TestSmtpServer } from '@canary/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bodyLimit, buildApp } from '../../src/app.js';
import { testConfig, validMail } from '../support.js';
import { expectKitError, fieldsOf, parseRaw, rawHttp, send } from '@canary/testkit';

/**
 * Bad input on every notification route over real HTTP: each gets the kit's JSON error with a 4xx status, and the
 * real SMTP server behind the app receives nothing for any of it.
 */

let smtp: TestSmtpServer;
let app: FastifyInstance;
let origin: string;
let port: number;

const json = 'application/json';
const sendMail = (body: string | Buffer, contentType = json) => send(origin, 'POST', '/notification/send', { body, contentType });
const goodText = JSON.stringify(validMail);

/** The body with `bytes` spliced into the subject, to send bytes no JSON text can hold. */
function withBytes(bytes: number[]): Buffer {
  const [before = '', after = ''] = goodText.replace(/"subject":"[^"]*"/, '"subject":"A<bytes>"').split('<bytes>');
  return Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
}

beforeAll(async () => {
  smtp = await startSmtpServer();
  app = buildApp(testConfig({ AWS_MAIL_SERVER_PORT: String(smtp.port) }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  origin = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await app?.close();
  await smtp?.close();
});

describe('POST /notification/send with hostile input', () => {
  afterEach(() => {
    const received = smtp.messages.splice(0);
    expect(received, 'no bad request may reach the mail server').toEqual([]);
  });

  it.each<[string, string | Buffer, string]>([
    ['malformed JSON', '{"subject": "x",', 'Malformed JSON request'],
    ['trailing garbage', `${goodText} {}`, 'Malformed JSON request'],
    ['an empty body', '', 'The request body is empty; send a JSON object'],
    ['a __proto__ key', `{"__proto__":{"toEmails":["evil@example.com"]},${goodText.slice(1)}`, 'Malformed JSON request'],
    ['UTF-16 text', Buffer.from(goodText, 'utf16le'), 'Malformed JSON request'],
    ['invalid UTF-8', withBytes([0xff]), 'The request body is not valid UTF-8'],
    ['an overlong UTF-8 encoding', withBytes([0xc0, 0xaf]), 'The request body is not valid UTF-8'],
    ['a lone surrogate escape', goodText.replace('"subject":"', '"subject":"\\udfff'), 'The request body is not valid Unicode: a \\u escape encodes a lone surrogate'],
  ])('%s: 400', async (_what, body, message) => {
    expectKitError(await sendMail(body), 400, message);
  });

  it.each(['null', '[]', '"mail"', '42'])('%s instead of an object: 400 naming the body', async (body) => {
    expect(fieldsOf(expectKitError(await sendMail(body), 400, 'Validation error'))).toEqual(['body']);
  });

  it(`a body over ${bodyLimit} bytes: 413, with and without a Content-Length`, async () => {
    const message = `The request body is larger than the limit of ${bodyLimit} bytes`;
    const over = JSON.stringify({ ...validMail, content: 'c'.repeat(bodyLimit) });
    expectKitError(await sendMail(over), 413, message);
    async function* chunks(): AsyncIterable<Buffer> {
      for (let i = 0; i < over.length; i += 16_384) yield Buffer.from(over.slice(i, i + 16_384));
    }
    expectKitError(await send(origin, 'POST', '/notification/send', { body: Readable.from(chunks()), contentType: json }), 413, message);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'message/rfc822', 'application/jsonx'])(
    'a valid body sent as %s: 415',
    async (contentType) => {
      expectKitError(await sendMail(goodText, contentType), 415, 'Unsupported content type; send application/json');
    },
  );

  it('a valid body without a Content-Type: 415', async () => {
    expectKitError(await send(origin, 'POST', '/notification/send', { body: goodText }), 415, 'Unsupported content type; send application/json');
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    // nodemailer takes these as message options: accepted, they would let a caller pick the sender, read files or add headers.
    ['a from field', { from: 'ceo@example.com' }, ['from']],
    ['an attachments field', { attachments: [{ path: '/etc/passwd' }] }, ['attachments']],
    ['a headers field', { headers: { Bcc: 'evil@example.com' } }, ['headers']],
    ['an html field', { html: '<script>alert(1)</script>' }, ['html']],
    ['a recipient with a header after CRLF', { toEmails: ['a@example.com\r\nBcc: evil@example.com'] }, ['toEmails.0']],
    ['a recipient with a display name', { toEmails: ['Evil <evil@example.com>'] }, ['toEmails.0']],
    ['two recipients in one string', { toEmails: ['a@example.com,evil@example.com'] }, ['toEmails.0']],
    ['a recipient in unicode', { toEmails: ['jürgen@example.com'] }, ['toEmails.0']],
    ['a recipient of 255 characters', { toEmails: [`${'a'.repeat(64)}@${'d'.repeat(186)}.com`] }, ['toEmails.0']],
    ['a cc list as a string', { ccEmails: 'a@example.com' }, ['ccEmails']],
    ['a bcc entry that is a number', { bccEmails: [42] }, ['bccEmails.0']],
    ['toEmails nested 3000 deep', { toEmails: 'NESTED' }, ['toEmails.0']],
    ['an empty subject', { subject: '' }, ['subject']],
    ['a subject of 256 characters', { subject: 's'.repeat(256) }, ['subject']],
    ['content that is null', { content: null }, ['content']],
  ])('%s: 400 naming it', async (_what, changes, fields) => {
    const text = JSON.stringify({ ...validMail, ...changes }).replace('"NESTED"', `${'['.repeat(3000)}${']'.repeat(3000)}`);
    expect(fieldsOf(expectKitError(await sendMail(text), 400, 'Validation error'))).toEqual(fields);
  });

  it('more than 50 distinct recipients in the three lists together: 400 with the count', async () => {
    const list = (prefix: string) => Array.from({ length: 20 }, (_, i) => `${prefix}${i}@example.com`);
    const body = JSON.stringify({ ...validMail, toEmails: list('to'), ccEmails: list('cc'), bccEmails: list('bcc') });
    expectKitError(await sendMail(body), 400, 'Too many recipients: 60 distinct addresses in toEmails, ccEmails and bccEmails together, at most 50 allowed');
  });
});

describe('POST /notification/send with hostile but valid text', () => {
  it('sends a subject and content holding CRLF, a Bcc header and an SMTP end-of-data line as text, to the listed recipient only', async () => {
    const subject = 'Hi\r\nBcc: evil@example.com\r\nX-Injected: yes';
    const content = 'line one\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<evil@example.com>\r\nDATA\r\nspoofed\r\n.\r\n';
    const answer = await sendMail(JSON.stringify({ subject, content, toEmails: ['victim@example.com'] }));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ accepted: ['victim@example.com'], rejected: [] });
    const [mail, ...more] = await smtp.waitForMessages(1);
    expect(more).toEqual([]);
    expect(mail?.recipients).toEqual(['victim@example.com']);
    expect(mail?.cc).toEqual([]);
    expect(mail?.subject).not.toMatch(/[\r\n]/);
    expect(mail?.text).toContain('MAIL FROM:<evil@example.com>');
    smtp.messages.length = 0;
  });
});

describe('the other routes and the transport', () => {
  it.each<[string, string]>([
    ['/notification/health-status', 'text/plain'],
    ['/notification/info', 'text/plain'],
    ['/notification/xray', json],
    ['/notification/health/live', json],
    ['/notification/health/ready', json],
  ])('GET %s with a junk query string and a text body: 200, as without them', async (path, type) => {
    const plain = await send(origin, 'GET', path);
    const junk = await send(origin, 'GET', `${path}?%&a=%zz&__proto__[x]=1&${'q'.repeat(2000)}=1`, { body: 'junk', contentType: 'text/plain' });
    expect([junk.status, junk.contentType.startsWith(type), junk.text]).toEqual([200, true, plain.text]);
  });

  it.each<[string, string]>([
    ['GET', '/notification/send'],
    ['PUT', '/notification/send'],
    ['POST', '/notification/xray'],
    ['DELETE', '/notification/info'],
    ['GET', '/notification/%25'],
    ['GET', '/notification/../notification/xray'],
    ['GET', '/NOTIFICATION/xray'],
  ])('%s %s: 404', async (method, path) => {
    expectKitError(await send(origin, method, path, { body: goodText, contentType: json }), 404, `No route ${method} ${path}`);
  });

  it.each(['/notification/%zz', '/notification/%', '/notification/send%ED%A0%80'])('%s, not valid percent-encoding: 400', async (path) => {
    expectKitError(await send(origin, 'GET', path), 400, 'Malformed URL: the path is not valid percent-encoding');
  });

  it('a request that is not HTTP: 400', async () => {
    expectKitError(parseRaw(await rawHttp(port, 'HELLO there\r\n\r\n')), 400, 'Malformed HTTP request');
  });

  it('a request line larger than the header limit: 431', async () => {
    const answer = parseRaw(await rawHttp(port, `GET /notification/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
    expectKitError(answer, 431, 'The request line and headers are larger than the limit of 16384 bytes');
  });

  it('leaves the service healthy and sends nothing', async () => {
    const ready = await send(origin, 'GET', '/notification/health/ready');
    expect([ready.status, JSON.parse(ready.text)]).toEqual([200, { status: 'UP', version: 'V1' }]);
    expect(smtp.messages).toEqual([]);
  });
});
