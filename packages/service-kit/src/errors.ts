import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface SubError {
  object: string;
  field: string;
  message: string;
  rejectedValue?: unknown;
}

/** The error body of both services: the shape of the original Spring services' ApiError, plus the numeric code. */
export interface ApiErrorBody {
  status: string;
  statusCode: number;
  timestamp: string;
  message: string;
  debugMessage: string | null;
  subErrors?: SubError[];
}

/** What the service log says of a failure that is not the client's: a message and the fields an operator needs. */
export interface ErrorLogEntry {
  msg: string;
  fields: Record<string, unknown>;
}

/** A failure a handler expects and the client can act on; its message is shown as is. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    message: string,
    readonly debugMessage: string | null = null,
    /** For a 5xx, what the log should say; without it the log gets the status, message and debug message. */
    readonly log?: ErrorLogEntry,
  ) {
    super(message);
  }
}

export function statusName(statusCode: number): string {
  return (STATUS_CODES[statusCode] ?? 'Error').toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

export function errorBody(
  statusCode: number,
  message: string,
  debugMessage: string | null = null,
  subErrors?: SubError[],
): ApiErrorBody {
  return {
    status: statusName(statusCode),
    statusCode,
    timestamp: new Date().toISOString(),
    message,
    debugMessage,
    ...(subErrors ? { subErrors } : {}),
  };
}

const sensitiveField = /pass|secret|token/i;
const maxEcho = 100;

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
  data?: unknown;
}

function toSubError(context: string, issue: ValidationIssue): SubError {
  const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
  let field = path;
  let message = issue.message ?? 'is invalid';
  if (issue.keyword === 'required') {
    const missing = String(issue.params.missingProperty);
    field = path ? `${path}.${missing}` : missing;
    message = 'is required';
  } else if (issue.keyword === 'additionalProperties') {
    const extra = String(issue.params.additionalProperty);
    field = path ? `${path}.${extra}` : extra;
    message = 'is not an accepted field';
  }
  const sub: SubError = { object: context, field: field || context, message };
  if (issue.data !== undefined && !sensitiveField.test(field) && typeof issue.data !== 'object') {
    // Echo enough to recognise the value, never a whole over-long one back to the client.
    sub.rejectedValue =
      typeof issue.data === 'string' && issue.data.length > maxEcho ? `${issue.data.slice(0, maxEcho)}…` : issue.data;
  }
  return sub;
}

/** Fastify's own errors that are the client's fault, and the message a person can act on for each. */
function clientErrorMessage(error: FastifyError, bodyLimit: number): string | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'Malformed JSON request';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The request body is empty; send a JSON object';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `The request body is larger than the limit of ${bodyLimit} bytes`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported content type; send application/json';
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'The Content-Length header does not match the body';
    case 'FST_ERR_CTP_INVALID_UTF8':
      return 'The request body is not valid UTF-8';
    default:
      return undefined;
  }
}

/**
 * One error handler for every route: validation and parsing failures become 4xx JSON with the reason,
 * HttpErrors keep their status and message, and anything else is a 500 whose details stay in the log.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  const bodyLimit = app.initialConfig.bodyLimit ?? 1_048_576;

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof HttpError) {
      // A 5xx is the service's or a dependency's failure: the operator needs its cause in the log, once.
      if (error.statusCode >= 500) {
        const { msg, fields } = error.log ?? { msg: 'request failed', fields: { reason: error.message, detail: error.debugMessage } };
        request.log.warn({ statusCode: error.statusCode, ...fields }, msg);
      }
      return reply.code(error.statusCode).send(errorBody(error.statusCode, error.message, error.debugMessage));
    }
    if (error.validation) {
      const context = error.validationContext ?? 'request';
      const subErrors = (error.validation as ValidationIssue[]).map((issue) => toSubError(context, issue));
      const summary = subErrors.map((sub) => `${sub.field} ${sub.message}`).join('; ');
      return reply.code(400).send(errorBody(400, 'Validation error', summary, subErrors));
    }
    const statusCode = error.statusCode ?? 500;
    if (statusCode >= 400 && statusCode < 500) {
      const message = clientErrorMessage(error, bodyLimit) ?? error.message;
      return reply.code(statusCode).send(errorBody(statusCode, message));
    }
    request.log.error({ err: error }, 'request failed');
    const code = statusCode >= 500 && statusCode < 600 ? statusCode : 500;
    return reply.code(code).send(errorBody(code, 'Internal server error; the cause is in the service log'));
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(errorBody(404, `No route ${request.method} ${request.url.split('?')[0] ?? ''}`, 'See the README for the routes of this service'));
  });
}
