import type { ConnectionOptions } from 'node:tls';
import nodemailer, { type SMTPSentMessageInfo, type SMTPTransportOptions, type Transporter } from 'nodemailer';
import type { NotificationConfig } from '../config.js';

export type SmtpTransport = Transporter<SMTPSentMessageInfo, SMTPTransportOptions>;

export interface SmtpTimeouts {
  /** TCP (and, on port 465, TLS) connection set-up. */
  connectionMs: number;
  /** From connect to the server's 220 greeting. */
  greetingMs: number;
  /** Longest silence from the server once the session runs. */
  socketMs: number;
  dnsMs: number;
}

/**
 * Well under nodemailer's defaults (2 min to connect, 10 min of silence): the caller waits for the answer,
 * and a mail server that slow is down as far as it is concerned.
 */
export const defaultSmtpTimeouts: SmtpTimeouts = {
  connectionMs: 10_000,
  greetingMs: 10_000,
  socketMs: 20_000,
  dnsMs: 10_000,
};

export interface SmtpTransportSettings {
  /** Extra TLS options, e.g. a CA that trusts a test server's self-signed certificate. */
  tls?: ConnectionOptions;
  timeouts?: Partial<SmtpTimeouts>;
}

export type SmtpServerConfig = Pick<
  NotificationConfig,
  'AWS_MAIL_SERVER_HOST' | 'AWS_MAIL_SERVER_PORT' | 'AWS_MAIL_SERVER_USERNAME' | 'AWS_MAIL_SERVER_PASSWORD'
>;

/**
 * Port 465 speaks TLS from the first byte. On any other port STARTTLS is used whenever the server offers it;
 * with credentials it is required, so a server (or a man in the middle) that hides STARTTLS never sees them.
 */
export function smtpTransportOptions(config: SmtpServerConfig, settings: SmtpTransportSettings = {}): SMTPTransportOptions {
  const timeouts = { ...defaultSmtpTimeouts, ...settings.timeouts };
  const user = config.AWS_MAIL_SERVER_USERNAME;
  const pass = config.AWS_MAIL_SERVER_PASSWORD;
  const implicitTls = config.AWS_MAIL_SERVER_PORT === 465;
  return {
    host: config.AWS_MAIL_SERVER_HOST,
    port: config.AWS_MAIL_SERVER_PORT,
    secure: implicitTls,
    requireTLS: !implicitTls && user !== undefined,
    ...(user === undefined ? {} : { auth: { user, pass } }),
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    dnsTimeout: timeouts.dnsMs,
    // Nothing shorter than TLS 1.2; certificates are verified unless the caller's `tls` says otherwise.
    tls: { minVersion: 'TLSv1.2', ...settings.tls },
    logger: false,
  };
}

/** The one place an SMTP transport is created, so tracing can wrap it and tests can pass TLS options. */
export function createSmtpTransport(config: SmtpServerConfig, settings: SmtpTransportSettings = {}): SmtpTransport {
  return nodemailer.createTransport(smtpTransportOptions(config, settings));
}
