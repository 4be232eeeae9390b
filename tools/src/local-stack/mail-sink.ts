import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type AddressObject } from 'mailparser';

export interface MailSink {
  port: number;
  /** Messages received so far. */
  received: number;
  close(): Promise<void>;
}

function addressList(value: AddressObject | AddressObject[] | undefined): string {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return list.flatMap((entry) => entry.value.map((a) => a.address ?? a.name)).join(', ');
}

/**
 * An SMTP server that accepts every message and prints it, for running the stack without a mail account.
 * Plain SMTP without authentication: it listens on loopback only, and the notification service never sends
 * credentials over an unencrypted connection anyway.
 */
export async function startMailSink(host: string, print: (line: string) => void): Promise<MailSink> {
  const sink: MailSink = { port: 0, received: 0, close: async () => {} };
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: 10 * 1024 * 1024,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          sink.received += 1;
          const to = session.envelope.rcptTo.map((r) => r.address).join(', ');
          print(`message ${sink.received}`);
          print(`  from:    ${session.envelope.mailFrom ? session.envelope.mailFrom.address : ''}`);
          print(`  to:      ${to}${mail.cc ? ` (cc: ${addressList(mail.cc)})` : ''}`);
          print(`  subject: ${mail.subject ?? ''}`);
          for (const line of (mail.text ?? '').trim().split('\n')) print(`  | ${line}`);
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  server.listen(0, host);
  await Promise.race([once(server.server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
  sink.port = (server.server.address() as AddressInfo).port;
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return sink;
}
