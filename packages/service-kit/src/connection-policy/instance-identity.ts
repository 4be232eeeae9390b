import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { instanceHeader } from './instance-header.js';

/** A random id per process: unique across pods and local replicas alike, and it reveals nothing about the host. */
export const processInstanceId = randomUUID();

/**
 * Names this process in every response, so a client behind a connection-balanced Service can tell the
 * instances apart (see InstanceBalancedPool).
 */
export const instanceIdentity = fp(async function instanceIdentity(app: FastifyInstance, options: { id?: string }) {
  const id = options.id ?? processInstanceId;
  // Callback style: an async hook costs every request a promise.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header(instanceHeader, id);
    done();
  });
});
