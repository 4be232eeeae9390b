import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HttpError } from '@canary/service-kit';
import { MailDeliveryError, type Mailer } from '../mail/mailer.js';
import { distinctRecipients } from '../mail/recipients.js';
import { apiErrorSchema as errorBodySchema } from '@canary/service-kit';

/** SES, the course's mail server, refuses messages with more than 50 recipients in to, cc and bcc together. */
export const maxRecipients = 50;
export const maxSubjectLength = 255;
export const maxContentLength = 50_000;
/** RFC 5321's limit for a forward path, the longest address a server has to accept. */
export const maxAddressLength = 254;

const address = Type.String({ format: 'email', maxLength: maxAddressLength });

/**
 * cc and bcc may be missing, empty, or null: the original's Java clients serialize an unset list as null.
 * `nullable` (an Ajv keyword) keeps a wrong type to one clear "must be array" error instead of an anyOf's three.
 */
const optionalList = Type.Optional(
  Type.Unsafe<string[] | null>({ type: 'array', items: address, maxItems: maxRecipients, nullable: true }),
);

export const sendBodySchema = Type.Object(
  {
    subject: Type.String({ minLength: 1, maxLength: maxSubjectLength }),
    content: Type.String({ maxLength: maxContentLength }),
    toEmails: Type.Array(address, { minItems: 1, maxItems: maxRecipients }),
    ccEmails: optionalList,
    bccEmails: optionalList,
  },
  { additionalProperties: false },
);

export const sentBodySchema = Type.Object({
  messageId: Type.String(),
  accepted: Type.Array(Type.String()),
  rejected: Type.Array(Type.String()),
});

export interface SendRouteOptions {
  mailer: Mailer;
}

/**
 * Answers once the SMTP server has accepted the message (or refused it), so the caller learns the outcome
 * and can retry: 200 with the message id, 502 when the server or the connection failed, 504 when it was too slow.
 */
export const sendRoute: FastifyPluginAsyncTypebox<SendRouteOptions> = async (app, { mailer }) => {
  const schema = {
    body: sendBodySchema,
    response: {
      200: sentBodySchema,
      400: errorBodySchema,
      413: errorBodySchema,
      415: errorBodySchema,
      500: errorBodySchema,
      502: errorBodySchema,
      504: errorBodySchema,
    },
  };

  app.post('/notification/send', { schema }, async (request, reply) => {
    const body = request.body;
    const { to, cc, bcc } = distinctRecipients(body.toEmails, body.ccEmails ?? [], body.bccEmails ?? []);
    const total = to.length + cc.length + bcc.length;
    if (total > maxRecipients) {
      throw new HttpError(
        400,
        `Too many recipients: ${total} distinct addresses in toEmails, ccEmails and bccEmails together, at most ${maxRecipients} allowed`,
      );
    }

    try {
      const sent = await mailer.send({ subject: body.subject, text: body.content, to, cc, bcc });
      request.log.info({ messageId: sent.messageId, accepted: sent.accepted.length, rejected: sent.rejected.length }, 'mail sent');
      return reply.code(200).send(sent);
    } catch (error) {
      if (!(error instanceof MailDeliveryError)) throw error;
      const { kind, reason, code, responseCode, command } = error;
      const log = { msg: 'mail not sent', fields: { smtp: { kind, reason, code, responseCode, command } } };
      const steps = [code, command && `at ${command}`, responseCode && `reply ${responseCode}`].filter(Boolean);
      const detail = steps.length > 0 ? `SMTP ${steps.join(' ')}` : null;
      if (kind === 'timeout') throw new HttpError(504, `The mail server did not answer in time: ${reason}`, detail, log);
      throw new HttpError(502, `The mail server did not accept the message: ${reason}`, detail, log);
    }
  });
};
