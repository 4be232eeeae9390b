import { describe, expect, it } from 'vitest';
import { smtpTransportOptions } from '../../src/mail/smtp-transport.js';
import { testConfig } from '../support.js';

const credentials = { AWS_MAIL_SERVER_USERNAME: 'AKIAEXAMPLE', AWS_MAIL_SERVER_PASSWORD: 'smtp-Secret-1' };

describe('smtpTransportOptions', () => {
  it('defaults to port 587 with opportunistic STARTTLS and bounded timeouts', () => {
    expect(smtpTransportOptions(testConfig())).toEqual({
      host: '127.0.0.1',
      port: 587,
      secure: false,
      requireTLS: false,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
      dnsTimeout: 10_000,
      tls: { minVersion: 'TLSv1.2' },
      logger: false,
    });
  });

  it('requires STARTTLS whenever credentials are set', () => {
    const options = smtpTransportOptions(testConfig(credentials));
    expect(options).toMatchObject({ port: 587, secure: false, requireTLS: true, auth: { user: 'AKIAEXAMPLE', pass: 'smtp-Secret-1' } });
  });

  it('speaks TLS from the first byte on port 465', () => {
    const options = smtpTransportOptions(testConfig({ ...credentials, AWS_MAIL_SERVER_PORT: '465' }));
    expect(options).toMatchObject({ port: 465, secure: true, requireTLS: false });
  });

  it('merges TLS options and timeout overrides from the caller', () => {
    const options = smtpTransportOptions(testConfig(), { tls: { ca: 'PEM' }, timeouts: { greetingMs: 5 } });
    expect(options.tls).toEqual({ minVersion: 'TLSv1.2', ca: 'PEM' });
    expect(options).toMatchObject({ greetingTimeout: 5, connectionTimeout: 10_000 });
  });
});
