import { Type } from '@sinclair/typebox';

/**
 * The schema of `ApiErrorBody`, for every route's error statuses: fastify serializes error replies from it, so
 * both services answer the same shape and nothing else leaks into an error.
 */
export const apiErrorSchema = Type.Object({
  status: Type.String(),
  statusCode: Type.Integer(),
  timestamp: Type.String(),
  message: Type.String(),
  debugMessage: Type.Union([Type.String(), Type.Null()]),
  subErrors: Type.Optional(
    Type.Array(
      Type.Object({
        object: Type.String(),
        field: Type.String(),
        message: Type.String(),
        rejectedValue: Type.Optional(Type.Unknown()),
      }),
    ),
  ),
});
