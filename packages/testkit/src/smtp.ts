import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { simpleParser } from 'mailparser';

export interface ReceivedMail {
  from: string;
  /** Envelope recipients (to, cc and bcc together), as the server saw them. */
  recipients: string[];
  to: string[];
  cc: string[];
  subject: string;
  text: string;
  /** Whether the session was upgraded to TLS before the message was sent. */
  secure: boolean;
  /** The user that authenticated, if any. */
  user: string | undefined;
}

export interface TestSmtpServer {
  port: number;
  messages: ReceivedMail[];
  /** The user name of every AUTH attempt that reached the server, successful or not, in order. */
  authAttempts: string[];
  /** Resolves when at least `count` messages have arrived, rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

export interface TestSmtpOptions {
  /** Accept only this user and password; without it, no authentication is offered. */
  credentials?: { user: string; pass: string };
  /** Answer every message with this SMTP error code (e.g. 550) instead of accepting it. */
  rejectWith?: number;
  /** Extra smtp-server options (a TLS key and certificate, for instance). */
  server?: Partial<SMTPServerOptions>;
}

function addresses(value: unknown): string[] {
  if (!value) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.flatMap((entry: { value?: { address?: string }[] }) => (entry.value ?? []).map((a) => a.address ?? ''));
}

/** A real SMTP server on 127.0.0.1 and a free port, keeping every message it accepts. */
export async function startSmtpServer(options: TestSmtpOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMail[] = [];
  const authAttempts: string[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    logger: false,
    disabledCommands: options.credentials ? [] : ['AUTH'],
    authOptional: !options.credentials,
    // Without a certificate smtp-server offers no STARTTLS, unless one is given in `server`.
    hideSTARTTLS: !options.server?.key,
    onAuth(auth, _session, callback) {
      authAttempts.push(auth.username ?? '');
      const ok = options.credentials && auth.username === options.credentials.user && auth.password === options.credentials.pass;
      callback(ok ? null : new Error('Invalid credentials'), ok ? { user: auth.username } : undefined);
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          if (options.rejectWith) {
            const err = new Error('Mailbox unavailable') as Error & { responseCode: number };
            err.responseCode = options.rejectWith;
            callback(err);
            return;
          }
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            recipients: session.envelope.rcptTo.map((r) => r.address),
            to: addresses(parsed.to),
            cc: addresses(parsed.cc),
            subject: parsed.subject ?? '',
            text: (parsed.text ?? '').trim(),
            secure: session.secure,
            user: typeof session.user === 'string' ? session.user : undefined,
          });
          for (const wake of waiters) wake();
          callback();
        })
        .catch((err: Error) => callback(err));
    },
    ...options.server,
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    messages,
    authAttempts,
    waitForMessages(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (messages.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(messages);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} e-mail(s) within ${timeoutMs} ms, got ${messages.length}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
