import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HttpError } from '@canary/service-kit';
import { NotificationError, type NotificationClient } from '../notification-client.js';
import { ApiError } from '../users/user-schemas.js';

export interface NotificationProxyOptions {
  client: NotificationClient;
}

/** Our path → the notification service's path whose answer it returns. */
const proxied = {
  '/notification-health-status': '/notification/health-status',
  '/notification-service-info': '/notification/info',
  '/notification-xray': '/notification/xray',
} as const;

const schema = {
  response: {
    // Whatever the notification service answered, sent on as raw bytes with its status and content type.
    default: Type.Unknown(),
    500: ApiError,
    502: ApiError,
    504: ApiError,
  },
};

export const notificationProxyRoutes: FastifyPluginAsyncTypebox<NotificationProxyOptions> = async (app, { client }) => {
  for (const [path, target] of Object.entries(proxied)) {
    app.get(path, { schema }, async (_request, reply) => {
      try {
        const answer = await client.get(target);
        reply.code(answer.statusCode);
        if (answer.contentType) reply.header('content-type', answer.contentType);
        return reply.send(answer.body);
      } catch (err) {
        if (err instanceof NotificationError) {
          throw new HttpError(err.kind === 'timeout' ? 504 : 502, err.message, `Calling ${client.origin}${target}`, {
            msg: 'notification service call failed',
            fields: { notification: { kind: err.kind, code: err.code, target: `${client.origin}${target}`, reason: err.message } },
          });
        }
        throw err;
      }
    });
  }
};
