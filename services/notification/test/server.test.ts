import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ListeningMessage } from '@canary/service-kit';
import { createSelfSignedCertificate, startSmtpServer, type TestSmtpServer } from '@canary/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validMail } from './support.js';

const serverEntry = fileURLToPath(new URL('../dist/bundle.js', import.meta.url));

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  exited: Promise<Finished>;
}

/** Starts the built server with exactly `env` (plus PATH), an IPC channel, and its output collected. */
function startServer(env: Record<string, string>): Started {
  const child = spawn(process.execPath, [serverEntry], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal, ...output }) as Finished);
  return { child, output, exited };
}

async function listening(started: Started): Promise<number> {
  const message = await Promise.race([
    once(started.child, 'message').then(([m]) => m as ListeningMessage),
    started.exited.then((f) => {
      throw new Error(`server exited with ${f.code} before listening: ${f.stderr}${f.stdout}`);
    }),
  ]);
  expect(message).toEqual({ type: 'listening', service: 'notification', port: expect.any(Number) });
  expect(message.port).toBeGreaterThan(0);
  return message.port;
}

beforeAll(() => {
  if (!existsSync(serverEntry)) throw new Error(`${serverEntry} is missing: build first with npx tsc -b services/notification`);
});

describe('the server refuses to start on a bad environment, saying which variable is wrong', () => {
  it.each([
    [{ APP_VERSION: 'V3' }, 'Invalid environment: APP_VERSION must be one of V1, V2\n'],
    [{ PORT: 'eighty' }, 'Invalid environment: PORT must be integer\n'],
    [{ AWS_MAIL_SERVER_PORT: '70000' }, 'Invalid environment: AWS_MAIL_SERVER_PORT must be <= 65535\n'],
    [{ MAIL_SEND_TIMEOUT_MS: '50' }, 'Invalid environment: MAIL_SEND_TIMEOUT_MS must be >= 100\n'],
    [{ AWS_MAIL_SERVER_FROM_ADDRESS: 'nobody' }, 'Invalid environment: AWS_MAIL_SERVER_FROM_ADDRESS must match format "email"\n'],
    [{ AWS_MAIL_SERVER_USERNAME: 'AKIAEXAMPLE' }, 'Invalid environment: AWS_MAIL_SERVER_USERNAME and AWS_MAIL_SERVER_PASSWORD must be set together\n'],
    [{ AWS_MAIL_SERVER_PASSWORD: 'only-a-Secret-9' }, 'Invalid environment: AWS_MAIL_SERVER_USERNAME and AWS_MAIL_SERVER_PASSWORD must be set together\n'],
    [{ AWS_MAIL_SERVER_HOST: 'smtp host' }, 'Invalid environment: AWS_MAIL_SERVER_HOST must be a host name or an IP address\n'],
  ])('%j', async (env, message) => {
    const finished = await startServer({ PORT: '0', ...env }).exited;
    expect(finished).toEqual({ code: 1, signal: null, stdout: '', stderr: message });
  });

  it('names HOST and PORT when it cannot listen there', async () => {
    // A well-formed name that does not resolve (.invalid never does): only listening can find it out.
    const finished = await startServer({ PORT: '0', HOST: 'no-such-host.invalid' }).exited;
    expect(finished.code).toBe(1);
    const fatal = finished.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string } })
      .filter((line) => line.level >= 50);
    expect(fatal).toEqual([
      expect.objectContaining({
        msg: 'stopping after an unexpected error',
        err: expect.objectContaining({ message: expect.stringMatching(/^Cannot listen on HOST=no-such-host\.invalid PORT=0: getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid/) }),
      }),
    ]);
  });
});

describe('a started server process', () => {
  let dir: string;
  let smtp: TestSmtpServer;
  let server: Started;
  let base: string;
  const pass = 'process-Secret-77';

  beforeAll(async () => {
    const certificate = await createSelfSignedCertificate();
    dir = await mkdtemp(join(tmpdir(), 'notification-test-'));
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, certificate.cert);
    smtp = await startSmtpServer({
      credentials: { user: 'mailer', pass },
      server: {
        key: certificate.key,
        cert: certificate.cert,
        onRcptTo(address, _session, callback) {
          if (address.address.startsWith('bounce')) callback(Object.assign(new Error('No such user here'), { responseCode: 550 }));
          else callback();
        },
      },
    });
    server = startServer({
      PORT: '0',
      HOST: '127.0.0.1',
      APP_VERSION: 'V2',
      LOG_LEVEL: 'info',
      AWS_MAIL_SERVER_HOST: '127.0.0.1',
      AWS_MAIL_SERVER_PORT: String(smtp.port),
      AWS_MAIL_SERVER_USERNAME: 'mailer',
      AWS_MAIL_SERVER_PASSWORD: pass,
      AWS_MAIL_SERVER_FROM_ADDRESS: 'v2@example.com',
      // The production path, certificate verification included: Node reads this extra CA at start.
      NODE_EXTRA_CA_CERTS: caFile,
    });
    base = `http://127.0.0.1:${await listening(server)}`;
  });

  afterAll(async () => {
    if (server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await smtp.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers over HTTP as V2', async () => {
    const status = await fetch(`${base}/notification/health-status`);
    expect(status.status).toBe(200);
    expect(await status.text()).toBe('Notification Service is UP and Running - V2');
    const xray = await fetch(`${base}/notification/xray`);
    expect(await xray.json()).toEqual({ applicationname: 'Notification Microservice', appversion: 'V2', message: 'Enabled AWS XRay' });
    const ready = await fetch(`${base}/notification/health/ready`);
    expect(await ready.json()).toEqual({ status: 'UP', version: 'V2' });
  });

  it('sends over STARTTLS with its credentials, and answers 200 after the server accepted the mail', async () => {
    const res = await fetch(`${base}/notification/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(validMail),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: ['microtest1@example.com'], rejected: [] });
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]).toMatchObject({ from: 'v2@example.com', secure: true, user: 'mailer', subject: validMail.subject });
  });

  it('answers 502 when the server refuses, and logs one warn line with the reason and no password', async () => {
    const res = await fetch(`${base}/notification/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...validMail, toEmails: ['bounce@example.com'] }),
    });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toBe(
      "The mail server did not accept the message: Can't send mail - all recipients were rejected: 550 No such user here",
    );
    const warningLines = () =>
      server.output.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; msg: string; smtp?: { reason: string; code: string } })
        .filter((line) => line.level === 40);
    // The child's stdout reaches this process through a pipe, which may deliver the line after the HTTP answer.
    await expect.poll(() => warningLines().length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(warningLines()).toEqual([
      expect.objectContaining({
        msg: 'mail not sent',
        smtp: expect.objectContaining({ code: 'EENVELOPE', reason: "Can't send mail - all recipients were rejected: 550 No such user here" }),
      }),
    ]);
    expect(server.output.stdout).not.toContain(pass);
  });

  it('stops cleanly on SIGTERM', async () => {
    server.child.kill('SIGTERM');
    const finished = await server.exited;
    expect(finished.code).toBe(0);
    expect(finished.stderr).toBe('');
  });
});
