import Fastify, { type FastifyInstance } from 'fastify';
import {
  instanceIdentity,
  jsonBodies,
  lifecyclePlugin,
  registerErrorHandling,
  serverOptions,
  tracingDisabled,
  xrayTracing,
  type XrayTracingOptions,
} from '@canary/service-kit';
import type { NotificationConfig } from './config.js';
import { createMailer, type Mailer, type MailerSettings } from './mail/mailer.js';
import { sendRoute } from './routes/send-route.js';
import { statusRoutes } from './routes/status-routes.js';

export type { Mailer, MailerSettings, OutgoingMail, SentMail } from './mail/mailer.js';

/**
 * 256 KiB: room for the longest accepted content (50 000 characters, mostly 1-3 bytes each in UTF-8) and
 * 3 x 50 addresses, while a client cannot make the service buffer megabytes per request.
 */
export const bodyLimit = 256 * 1024;

export interface NotificationDeps {
  /** A mailer to use instead of one built from the config; the caller closes it. */
  mailer?: Mailer;
  /** TLS options and timeouts for the mailer built from the config (tests trust a self-signed certificate here). */
  smtp?: MailerSettings;
  /** X-Ray for incoming requests (`tracingOptions(config, ...)` in server.ts); default off. */
  tracing?: XrayTracingOptions;
}

export function buildApp(config: NotificationConfig, deps: NotificationDeps = {}): FastifyInstance {
  const app = Fastify(serverOptions({ level: config.LOG_LEVEL, service: 'notification', bodyLimit }));

  const mailer = deps.mailer ?? createMailer(config, deps.smtp);
  if (!deps.mailer) app.addHook('onClose', async () => mailer.close());

  // First, so it sees every request. Nothing here reads the X-Ray context (no outgoing HTTP, no database),
  // so the segment is not carried through async calls: keepContext would cost every request for nothing.
  app.register(xrayTracing, { ...(deps.tracing ?? tracingDisabled), keepContext: false });
  app.register(lifecyclePlugin);
  app.register(instanceIdentity);
  app.register(jsonBodies);
  registerErrorHandling(app);
  app.register(statusRoutes, { version: config.APP_VERSION });
  app.register(sendRoute, { mailer });
  return app;
}
