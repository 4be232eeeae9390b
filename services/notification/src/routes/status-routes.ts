import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppVersion } from '../config.js';
import { hostInfoText } from '../host-info.js';
import { probeLogLevel } from '@canary/service-kit';

export interface StatusRoutesOptions {
  version: AppVersion;
}

const textPlain = 'text/plain; charset=utf-8';

/** The original's three informational routes, plus liveness and readiness for Kubernetes and the local balancer. */
export const statusRoutes: FastifyPluginAsyncTypebox<StatusRoutesOptions> = async (app, { version }) => {
  app.get('/notification/health-status', { schema: { response: { 200: Type.String() } } }, async (_request, reply) => {
    return reply.type(textPlain).send(`Notification Service is UP and Running - ${version}`);
  });

  app.get('/notification/info', { schema: { response: { 200: Type.String() } } }, async (_request, reply) => {
    return reply.type(textPlain).send(hostInfoText(version));
  });

  const xrayBody = Type.Object({ applicationname: Type.String(), appversion: Type.String(), message: Type.String() });
  app.get('/notification/xray', { schema: { response: { 200: xrayBody } } }, async () => {
    return { applicationname: 'Notification Microservice', appversion: version, message: 'Enabled AWS XRay' };
  });

  app.get('/notification/health/live', { logLevel: probeLogLevel, schema: { response: { 200: Type.Object({ status: Type.Literal('UP') }) } } }, async () => {
    return { status: 'UP' as const };
  });

  const readySchema = {
    response: {
      200: Type.Object({ status: Type.Literal('UP'), version: Type.String() }),
      503: Type.Object({ status: Type.Literal('DOWN'), reason: Type.String() }),
    },
  };
  app.get('/notification/health/ready', { logLevel: probeLogLevel, schema: readySchema }, async (_request, reply) => {
    if (app.lifecycle.shuttingDown) return reply.code(503).send({ status: 'DOWN', reason: 'shutting down' });
    return reply.code(200).send({ status: 'UP', version });
  });
};
