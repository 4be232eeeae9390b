import type { NotificationConfig } from '../config.js';
import { createSmtpTransport, type SmtpTransport, type SmtpTransportSettings } from './smtp-transport.js';

export interface OutgoingMail {
  subject: string;
  text: string;
  to: string[];
  cc: string[];
  bcc: string[];
}

export interface SentMail {
  messageId: string;
  /** Recipients the SMTP server accepted. */
  accepted: string[];
  /** Recipients it refused while accepting the message for the others. */
  rejected: string[];
}

/** Sends one message and resolves once the SMTP server has accepted it. */
export interface Mailer {
  send(mail: OutgoingMail): Promise<SentMail>;
  close(): void;
}

/** Why a message was not accepted: `timeout` when the server did not answer in time, `failed` otherwise. */
export class MailDeliveryError extends Error {
  override readonly name = 'MailDeliveryError';
  constructor(
    readonly kind: 'timeout' | 'failed',
    /** What the server or the connection said, without credentials. */
    readonly reason: string,
    /** nodemailer's error code (ETIMEDOUT, ECONNECTION, EAUTH, EENVELOPE, EMESSAGE, ETLS, ...). */
    readonly code: string | undefined,
    readonly responseCode: number | undefined,
    /** The SMTP command that failed, when known. */
    readonly command: string | undefined,
  ) {
    super(reason);
  }
}

export type MailerSettings = SmtpTransportSettings;

const maxReasonLength = 500;

interface NodemailerFailure {
  message?: unknown;
  code?: unknown;
  responseCode?: unknown;
  command?: unknown;
  cause?: unknown;
}

function redact(text: string, secrets: (string | undefined)[]): string {
  let result = text;
  // Very short values would blank out ordinary words; no real SMTP credential is that short.
  for (const secret of secrets) if (secret && secret.length >= 4) result = result.replaceAll(secret, '[redacted]');
  return result.length > maxReasonLength ? `${result.slice(0, maxReasonLength)}...` : result;
}

export function toDeliveryError(
  error: unknown,
  config: Pick<NotificationConfig, 'AWS_MAIL_SERVER_USERNAME' | 'AWS_MAIL_SERVER_PASSWORD' | 'MAIL_SEND_TIMEOUT_MS'>,
): MailDeliveryError {
  const failure = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as NodemailerFailure;
  const code = typeof failure.code === 'string' ? failure.code : undefined;
  const responseCode = typeof failure.responseCode === 'number' ? failure.responseCode : undefined;
  const command = typeof failure.command === 'string' ? failure.command : undefined;
  const deadlinePassed = code === 'EABORT' && failure.cause instanceof Error && failure.cause.name === 'TimeoutError';
  const message = deadlinePassed
    ? `the send took longer than MAIL_SEND_TIMEOUT_MS (${config.MAIL_SEND_TIMEOUT_MS} ms)`
    : String(failure.message ?? 'unknown error');
  const kind = code === 'ETIMEDOUT' || deadlinePassed ? 'timeout' : 'failed';
  const reason = redact(message, [config.AWS_MAIL_SERVER_PASSWORD, config.AWS_MAIL_SERVER_USERNAME]);
  return new MailDeliveryError(kind, reason, code, responseCode, command);
}

/** A mailer over an SMTP transport; `transport` defaults to one built from the config. */
export function createMailer(
  config: NotificationConfig,
  settings: MailerSettings = {},
  transport: SmtpTransport = createSmtpTransport(config, settings),
): Mailer {
  // Bounds the whole send (connect, TLS, auth, envelope, data), whatever the per-step timeouts would allow.
  const deadlineMs = config.MAIL_SEND_TIMEOUT_MS;
  return {
    async send(mail) {
      try {
        const info = await transport.sendMail({
          from: config.AWS_MAIL_SERVER_FROM_ADDRESS,
          to: mail.to,
          cc: mail.cc,
          bcc: mail.bcc,
          subject: mail.subject,
          text: mail.text,
          signal: AbortSignal.timeout(deadlineMs),
        });
        return {
          messageId: info.messageId,
          accepted: info.accepted.map(String),
          rejected: info.rejected.map(String),
        };
      } catch (error) {
        throw toDeliveryError(error, config);
      }
    },
    close() {
      transport.close();
    },
  };
}
