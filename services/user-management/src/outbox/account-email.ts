import type { OutboxMessage } from './outbox-repository.js';

/** The original service's account-creation e-mail, word for word. */
export function accountCreatedEmail(firstname: string, email: string): OutboxMessage {
  return {
    kind: 'account-created',
    payload: {
      subject: 'Stack Simplify account creation.',
      content: `Hello ${firstname}, your stack simplify account is created successfully!`,
      toEmails: [email],
    },
  };
}
