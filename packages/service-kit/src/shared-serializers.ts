import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type SerializerFactory = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildSerializer']>;
type Serializer = ReturnType<ReturnType<SerializerFactory>>;

/**
 * Fastify's own serializer factory (fast-json-stringify), compiling each response schema object once: fastify
 * otherwise compiles a serializer per route and status, and every route shares the error schema for six or more
 * statuses. Compiling them made up a tenth of user management's start-up. The cache belongs to one factory call,
 * that is to one set of shared schemas, so a serializer is only reused where it would have been compiled the same.
 */
export function sharedSerializers(): SerializerFactory {
  const build = SerializerSelector();
  return (externalSchemas, options) => {
    const compile = build(externalSchemas, options);
    const compiled = new WeakMap<object, Serializer>();
    return (route) => {
      const { schema } = route;
      if (typeof schema !== 'object' || schema === null) return compile(route);
      let serializer = compiled.get(schema);
      if (!serializer) {
        serializer = compile(route);
        compiled.set(schema, serializer);
      }
      return serializer;
    };
  };
}
