import type { FastifyInstance } from 'fastify';
import { createSelfSignedCertificate, startSmtpServer, type SelfSignedCertificate, type TestSmtpServer } from '@canary/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, startApp, startSilentServer, validMail, type SilentServer } from '../support.js';

const credentials = { user: 'ses-smtp-user', pass: 'ses-smtp-Secret-123' };
const credentialEnv = { AWS_MAIL_SERVER_USERNAME: credentials.user, AWS_MAIL_SERVER_PASSWORD: credentials.pass };
const from = 'no-reply@stacksimplify.example';

let smtp: TestSmtpServer | undefined;
let silent: SilentServer | undefined;
let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  await smtp?.close();
  await silent?.close();
  app = smtp = silent = undefined;
});

function send(target: FastifyInstance, payload: object) {
  return target.inject({ method: 'POST', url: '/notification/send', payload });
}

describe('POST /notification/send delivers to the SMTP server before it answers', () => {
  it('sends the subject, content, from, to, cc and bcc, and answers 200 with the message id', async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port), AWS_MAIL_SERVER_FROM_ADDRESS: from });
    const res = await send(app, { ...validMail, ccEmails: ['copy@example.com'], bccEmails: ['hidden@example.com'] });

    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toEqual({
      messageId: expect.stringMatching(/^<[^<>@\s]+@[^<>@\s]+>$/),
      accepted: ['microtest1@example.com', 'copy@example.com', 'hidden@example.com'],
      rejected: [],
    });
    // Answered after acceptance: the message is already there, no waiting.
    expect(smtp.messages).toEqual([
      {
        from,
        recipients: ['microtest1@example.com', 'copy@example.com', 'hidden@example.com'],
        to: ['microtest1@example.com'],
        cc: ['copy@example.com'],
        subject: 'Stack Simplify account creation.',
        text: 'Hello MicroFName, your stack simplify account is created successfully!',
        secure: false,
        user: undefined,
      },
    ]);
  });

  it('keeps non-ASCII subject and content intact', async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const res = await send(app, { subject: 'Grüße — 你好 ✉', content: 'Héllo\nsecond line ☃', toEmails: ['a@example.com'] });
    expect(res.statusCode).toBe(200);
    expect(smtp.messages.map((m) => [m.subject, m.text])).toEqual([['Grüße — 你好 ✉', 'Héllo\nsecond line ☃']]);
  });

  it('accepts cc and bcc as empty lists or null, and empty content', async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    expect((await send(app, { ...validMail, ccEmails: [], bccEmails: [] })).statusCode).toBe(200);
    expect((await send(app, { ...validMail, ccEmails: null, bccEmails: null })).statusCode).toBe(200);
    expect((await send(app, { ...validMail, content: '' })).statusCode).toBe(200);
    expect(smtp.messages.map((m) => m.recipients)).toEqual([['microtest1@example.com'], ['microtest1@example.com'], ['microtest1@example.com']]);
    expect(smtp.messages[2]?.text).toBe('');
  });

  it('de-duplicates each list case-insensitively, keeping the first spelling', async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const res = await send(app, {
      ...validMail,
      toEmails: ['Ann@example.com', 'bob@example.com', 'ann@example.com', 'ANN@EXAMPLE.COM', 'Bob@Example.com'],
      ccEmails: ['Carl@example.com', 'carl@EXAMPLE.com'],
      bccEmails: ['dora@example.com', 'Dora@example.com', 'dora@example.com'],
    });
    expect(res.statusCode).toBe(200);
    // nodemailer lower-cases domains (they are case-insensitive anyway); the local part keeps its first spelling.
    const expected = ['Ann@example.com', 'bob@example.com', 'Carl@example.com', 'dora@example.com'];
    expect(res.json().accepted).toEqual(expected);
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]?.recipients).toEqual(expected);
    expect(smtp.messages[0]?.to).toEqual(['Ann@example.com', 'bob@example.com']);
    expect(smtp.messages[0]?.cc).toEqual(['Carl@example.com']);
  });

  it('50 duplicates of one address are one recipient, within the 50-recipient limit', async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const toEmails = Array.from({ length: 50 }, (_, i) => (i % 2 ? 'same@example.com' : 'SAME@example.com'));
    const res = await send(app, { ...validMail, toEmails, ccEmails: toEmails, bccEmails: toEmails });
    expect(res.statusCode).toBe(200);
    expect(smtp.messages[0]?.to).toEqual(['SAME@example.com']);
    expect(smtp.messages[0]?.cc).toEqual([]);
    expect(smtp.messages[0]?.recipients).toEqual(['SAME@example.com']);
  });

  it('an address in several lists gets one copy, in its first list: 50 people named in to and again in cc are 50', async () => {
    smtp = await startSmtpServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const fifty = Array.from({ length: 50 }, (_, i) => `person${i}@example.com`);
    const res = await send(app, { ...validMail, toEmails: fifty, ccEmails: fifty.map((address) => address.toUpperCase()), bccEmails: ['Person7@example.com'] });
    expect(res.statusCode).toBe(200);
    expect(smtp.messages[0]?.to).toEqual(fifty);
    expect(smtp.messages[0]?.cc).toEqual([]);
    expect(smtp.messages[0]?.recipients).toEqual(fifty);
    // One more person is one too many, wherever they are named.
    const over = await send(app, { ...validMail, toEmails: fifty, ccEmails: fifty, bccEmails: ['extra@example.com'] });
    expect(over.statusCode).toBe(400);
    expect(over.json().message).toBe('Too many recipients: 51 distinct addresses in toEmails, ccEmails and bccEmails together, at most 50 allowed');
  });

  it('reports recipients the server refused while it accepted the others', async () => {
    smtp = await startSmtpServer({
      server: {
        onRcptTo(address, _session, callback) {
          if (address.address === 'gone@example.com') {
            callback(Object.assign(new Error('No such user'), { responseCode: 550 }));
            return;
          }
          callback();
        },
      },
    });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const res = await send(app, { ...validMail, toEmails: ['here@example.com', 'gone@example.com'] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: ['here@example.com'], rejected: ['gone@example.com'] });
    expect(smtp.messages[0]?.recipients).toEqual(['here@example.com']);
  });
});

describe('POST /notification/send makes SMTP failures visible', () => {
  it('a message the server refuses is a 502 with the server reply', async () => {
    smtp = await startSmtpServer({ rejectWith: 550 });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json()).toEqual({
      status: 'BAD_GATEWAY',
      statusCode: 502,
      timestamp: expect.any(String),
      message: 'The mail server did not accept the message: Message failed: 550 Mailbox unavailable',
      debugMessage: 'SMTP EMESSAGE at DATA reply 550',
    });
    expect(smtp.messages).toEqual([]);
  });

  it('all recipients refused is a 502', async () => {
    smtp = await startSmtpServer({
      server: {
        onRcptTo(_address, _session, callback) {
          callback(Object.assign(new Error('No such user'), { responseCode: 550 }));
        },
      },
    });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({
      message: 'The mail server did not accept the message: Can\'t send mail - all recipients were rejected: 550 No such user',
      debugMessage: 'SMTP EENVELOPE at RCPT TO reply 550',
    });
  });

  it('a mail server that does not listen is a 502 naming the refused connection', async () => {
    const port = await closedPort();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(port) });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({
      status: 'BAD_GATEWAY',
      message: `The mail server did not accept the message: connect ECONNREFUSED 127.0.0.1:${port}`,
      debugMessage: 'SMTP ESOCKET at CONN',
    });
  });

  it('a host name that does not resolve is a 502', async () => {
    app = await startApp({ AWS_MAIL_SERVER_HOST: 'smtp.invalid', AWS_MAIL_SERVER_PORT: '2525' });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json().message).toMatch(/^The mail server did not accept the message: .*smtp\.invalid/);
  });

  it('a server that never greets is a 504 once the greeting timeout passes', async () => {
    silent = await startSilentServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(silent.port) }, { smtp: { timeouts: { greetingMs: 300 } } });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(504);
    expect(res.json()).toEqual({
      status: 'GATEWAY_TIMEOUT',
      statusCode: 504,
      timestamp: expect.any(String),
      message: 'The mail server did not answer in time: Greeting never received',
      debugMessage: 'SMTP ETIMEDOUT at CONN',
    });
  });

  it('a send that outlasts MAIL_SEND_TIMEOUT_MS is a 504', async () => {
    silent = await startSilentServer();
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(silent.port), MAIL_SEND_TIMEOUT_MS: '300' });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({
      message: 'The mail server did not answer in time: the send took longer than MAIL_SEND_TIMEOUT_MS (300 ms)',
      debugMessage: 'SMTP EABORT',
    });
  });
});

describe('TLS and credentials', () => {
  let certificate: SelfSignedCertificate;
  beforeAll(async () => {
    certificate = await createSelfSignedCertificate();
  });

  const tlsServer = () => ({ key: certificate.key, cert: certificate.cert });

  it('with credentials and a server offering STARTTLS, the session is encrypted and authenticated', async () => {
    smtp = await startSmtpServer({ credentials, server: tlsServer() });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port), ...credentialEnv }, { smtp: { tls: { ca: certificate.cert } } });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(200);
    expect(smtp.authAttempts).toEqual([credentials.user]);
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]).toMatchObject({ secure: true, user: credentials.user, recipients: ['microtest1@example.com'] });
  });

  it('with credentials and a server that offers no STARTTLS, nothing is sent and the server never sees AUTH', async () => {
    // The server would even accept AUTH in clear text: only the client's refusal keeps the password off the wire.
    smtp = await startSmtpServer({ credentials, server: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port), ...credentialEnv });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({
      message: 'The mail server did not accept the message: Error upgrading connection with STARTTLS: 500 Error: command not recognized',
      debugMessage: 'SMTP ETLS at STARTTLS reply 500',
    });
    expect(res.body).not.toContain(credentials.pass);
    expect(smtp.authAttempts).toEqual([]);
    expect(smtp.messages).toEqual([]);
  });

  it('a certificate the service does not trust fails the send: certificates are verified', async () => {
    smtp = await startSmtpServer({ credentials, server: tlsServer() });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port), ...credentialEnv });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json().message).toContain('self-signed certificate');
    expect(smtp.authAttempts).toEqual([]);
    expect(smtp.messages).toEqual([]);
  });

  it('wrong credentials are a 502 with the server reply and without the password', async () => {
    smtp = await startSmtpServer({ credentials, server: tlsServer() });
    const wrong = { ...credentialEnv, AWS_MAIL_SERVER_PASSWORD: 'not-the-Password-42' };
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port), ...wrong }, { smtp: { tls: { ca: certificate.cert } } });
    const res = await send(app, validMail);
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ debugMessage: 'SMTP EAUTH at AUTH PLAIN reply 535' });
    expect(res.json().message).toMatch(/^The mail server did not accept the message: Invalid login: 535/);
    expect(res.body).not.toContain('not-the-Password-42');
    expect(smtp.messages).toEqual([]);
  });

  it('without credentials, STARTTLS is still used when the server offers it', async () => {
    smtp = await startSmtpServer({ server: tlsServer() });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) }, { smtp: { tls: { ca: certificate.cert } } });
    expect((await send(app, validMail)).statusCode).toBe(200);
    expect(smtp.messages[0]).toMatchObject({ secure: true, user: undefined });
  });

  it('without credentials and without STARTTLS on offer, the mail goes in clear text', async () => {
    smtp = await startSmtpServer({ server: { disabledCommands: ['AUTH', 'STARTTLS'] } });
    app = await startApp({ AWS_MAIL_SERVER_PORT: String(smtp.port) });
    expect((await send(app, validMail)).statusCode).toBe(200);
    expect(smtp.messages[0]).toMatchObject({ secure: false, user: undefined });
  });
});
