import { isUtf8 } from 'node:buffer';
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { errorBody } from './errors.js';
import { loggerOptions, type LoggerSettings } from './logger.js';
import { sharedSerializers } from './shared-serializers.js';

export interface ServerSettings extends LoggerSettings {
  /** Largest accepted request body in bytes; larger ones get a 413. */
  bodyLimit: number;
  /** false gives a silent app, as tests want. */
  logging?: boolean;
}

/**
 * Fastify options both services share. Ajv is strict: no type coercion (a string where a boolean belongs is a 400,
 * not a silent "true") and no stripping of unknown fields (they are a 400 that names them).
 */
export function serverOptions(settings: ServerSettings): FastifyServerOptions {
  return {
    logger: settings.logging === false ? false : loggerOptions(settings),
    bodyLimit: settings.bodyLimit,
    // The original Spring MVC services matched `/usermgmt/users/` as `/usermgmt/users`: their clients may send either.
    routerOptions: { ignoreTrailingSlash: true },
    // Behind kube-proxy and an ALB the peer address is a hop, not the client.
    trustProxy: true,
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, verbose: true },
    },
    // Keep-alive connections are closed when idle on shutdown, in-flight requests finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    frameworkErrors,
    clientErrorHandler,
    schemaController: { compilersFactory: { buildSerializer: sharedSerializers() } },
  };
}

/** find-my-way's default limit on one path parameter (a user name is at most 20 characters). */
const maxParamLength = 100;

/**
 * Errors the router raises before any route runs, answered with the kit's error body instead of Fastify's own
 * shape: a path that is not valid percent-encoding (`/user/%`), or a parameter over `maxParamLength`.
 */
function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_BAD_URL') {
    reply.code(400).send(errorBody(400, 'Malformed URL: the path is not valid percent-encoding'));
  } else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.code(414).send(errorBody(414, `A path segment is longer than ${maxParamLength} characters`));
  } else {
    const statusCode = error.statusCode ?? 500;
    reply.code(statusCode).send(errorBody(statusCode, statusCode < 500 ? error.message : 'Internal server error'));
  }
}

/**
 * Requests Node's HTTP parser refuses (not HTTP, headers over `maxHeaderSize`, too slow): the kit's error body in a
 * last response, then the connection closes, as Fastify's default handler does with a body of its own shape.
 */
function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [statusCode, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, `The request line and headers are larger than the limit of ${maxHeaderSize} bytes`]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request did not arrive in time']
        : [400, 'Malformed HTTP request'];
  const body = JSON.stringify(errorBody(statusCode, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

class InvalidUtf8Error extends Error {
  readonly code = 'FST_ERR_CTP_INVALID_UTF8';
  readonly statusCode = 400;
}

class LoneSurrogateError extends Error {
  readonly code = 'FST_ERR_CTP_INVALID_UNICODE';
  readonly statusCode = 400;
}

/** In a `u` regular expression a surrogate range matches only unpaired halves: a valid emoji pair does not match. */
const loneSurrogate = /[\uD800-\uDFFF]/u;

/**
 * Whether some string of a parsed JSON value, keys included, holds a lone surrogate (from an escape such as
 * `"\ud800"`): it cannot be encoded in UTF-8, and the driver would store U+FFFD instead of what was sent.
 * Iterative, because a body may nest far deeper than the call stack.
 */
function hasLoneSurrogate(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      if (loneSurrogate.test(item)) return true;
    } else if (Array.isArray(item)) {
      for (const child of item) pending.push(child);
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (loneSurrogate.test(key)) return true;
        pending.push(child);
      }
    }
  }
  return false;
}

/**
 * JSON bodies only, and only valid UTF-8, escapes included: Node would otherwise turn bad bytes (or a lone
 * surrogate escape) into U+FFFD and store that.
 * Plain text has no route here, so it is a 415 rather than a confusing validation error.
 */
export const jsonBodies = fp(async function jsonBodies(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(new InvalidUtf8Error('The request body is not valid UTF-8'), undefined);
      return;
    }
    parseJson(request, bytes.toString('utf8'), (err, value) => {
      if (!err && hasLoneSurrogate(value)) {
        done(new LoneSurrogateError('The request body is not valid Unicode: a \\u escape encodes a lone surrogate'), undefined);
        return;
      }
      done(err, value);
    });
  });
});
