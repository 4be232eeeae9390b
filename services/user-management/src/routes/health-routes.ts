import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabasePool } from '../db/pool.js';
import { probeLogLevel } from '@canary/service-kit';

export interface HealthRoutesOptions {
  pool: DatabasePool;
  appVersion: string;
  /** How long `SELECT 1` may take before the instance counts as not ready. */
  readinessTimeoutMs: number;
}

const Up = Type.Object({ status: Type.Literal('UP') });
const Down = Type.Object({ status: Type.Literal('DOWN'), reason: Type.String() });

async function databaseAnswers(pool: DatabasePool, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the database did not answer within ${timeoutMs} ms`), timeoutMs);
  });
  const probe = pool.query('SELECT 1').then(
    () => undefined,
    (err: { code?: string; message?: string }) => `the database is unavailable (${err.code ?? err.message ?? 'error'})`,
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { pool, appVersion, readinessTimeoutMs }) => {
  app.get('/health-status', { schema: { response: { 200: Type.String() } } }, async (_request, reply) => {
    return reply.type('text/plain; charset=utf-8').send(`User Management Service UP and RUNNING - ${appVersion}`);
  });

  // Liveness never looks at the database: an outage must not get every replica restarted.
  app.get('/health/live', { logLevel: probeLogLevel, schema: { response: { 200: Up } } }, async () => ({ status: 'UP' as const }));

  app.get('/health/ready', { logLevel: probeLogLevel, schema: { response: { 200: Up, 503: Down } } }, async (_request, reply) => {
    if (app.lifecycle.shuttingDown) return reply.code(503).send({ status: 'DOWN', reason: 'shutting down' });
    const problem = await databaseAnswers(pool, readinessTimeoutMs);
    if (problem) return reply.code(503).send({ status: 'DOWN', reason: problem });
    return { status: 'UP' as const };
  });
};
