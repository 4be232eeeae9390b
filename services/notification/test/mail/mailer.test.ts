import { describe, expect, it } from 'vitest';
import { MailDeliveryError, toDeliveryError } from '../../src/mail/mailer.js';
import { distinctRecipients, uniqueAddresses } from '../../src/mail/recipients.js';

const config = { AWS_MAIL_SERVER_USERNAME: 'AKIAEXAMPLE', AWS_MAIL_SERVER_PASSWORD: 'smtp-Secret-1', MAIL_SEND_TIMEOUT_MS: 4000 };

describe('toDeliveryError', () => {
  it('keeps the SMTP details and blanks out the credentials wherever the reason repeats them', () => {
    const failure = Object.assign(new Error('Invalid login: 535 user AKIAEXAMPLE with smtp-Secret-1 refused'), {
      code: 'EAUTH',
      responseCode: 535,
      command: 'AUTH PLAIN',
    });
    const error = toDeliveryError(failure, config);
    expect(error).toBeInstanceOf(MailDeliveryError);
    expect(error).toMatchObject({
      kind: 'failed',
      reason: 'Invalid login: 535 user [redacted] with [redacted] refused',
      code: 'EAUTH',
      responseCode: 535,
      command: 'AUTH PLAIN',
    });
  });

  it('classifies ETIMEDOUT and a passed deadline as timeouts, a plain abort as a failure', () => {
    expect(toDeliveryError(Object.assign(new Error('Greeting never received'), { code: 'ETIMEDOUT' }), config).kind).toBe('timeout');
    const deadline = Object.assign(new Error('Message sending aborted', { cause: new DOMException('late', 'TimeoutError') }), { code: 'EABORT' });
    expect(toDeliveryError(deadline, config)).toMatchObject({ kind: 'timeout', reason: 'the send took longer than MAIL_SEND_TIMEOUT_MS (4000 ms)' });
    expect(toDeliveryError(Object.assign(new Error('Message sending aborted'), { code: 'EABORT' }), config).kind).toBe('failed');
  });

  it('cuts very long reasons and copes with values that are not errors', () => {
    expect(toDeliveryError(new Error('x'.repeat(2000)), config).reason).toBe(`${'x'.repeat(500)}...`);
    expect(toDeliveryError('socket hang up', config)).toMatchObject({ kind: 'failed', reason: 'socket hang up', code: undefined });
  });
});

describe('uniqueAddresses', () => {
  it('drops case-insensitive repeats, keeping the first spelling and the order', () => {
    expect(uniqueAddresses(['B@x.org', 'a@x.org', 'b@X.ORG', 'A@x.org', 'c@x.org'])).toEqual(['B@x.org', 'a@x.org', 'c@x.org']);
    expect(uniqueAddresses([])).toEqual([]);
  });
});

describe('distinctRecipients', () => {
  it('keeps each address once over the three lists, in its first place: to, then cc, then bcc', () => {
    expect(distinctRecipients(['a@x.org', 'b@x.org'], ['B@X.org', 'c@x.org', 'c@x.org'], ['A@x.org', 'C@x.org', 'd@x.org'])).toEqual({
      to: ['a@x.org', 'b@x.org'],
      cc: ['c@x.org'],
      bcc: ['d@x.org'],
    });
  });
});
