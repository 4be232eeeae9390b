import { Type, type Static } from '@sinclair/typebox';
import { apiErrorSchema } from '@canary/service-kit';

/**
 * Letters, digits, `.`, `_` and `-`, starting with a letter or digit: safe in a URL path, a log line and SQL,
 * and no `.`/`..` path segments.
 */
export const usernamePattern = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
/** Printable text: no control characters (tabs, newlines, NUL), which have no place in a name. */
const printable = '^[^\\u0000-\\u001F\\u007F]*$';
/** As `printable`, and not only spaces; the empty string is left to minLength, so it gets one clear error. */
const printableNotBlank = '^$|^(?=.*\\S)[^\\u0000-\\u001F\\u007F]+$';

export const Username = Type.String({ minLength: 3, maxLength: 20, pattern: usernamePattern });
/** 254 characters: the longest address SMTP can carry (RFC 5321 path limit). */
export const Email = Type.String({ format: 'email', maxLength: 254 });
export const FirstName = Type.String({ minLength: 1, maxLength: 20, pattern: printableNotBlank });
export const LastName = Type.String({ maxLength: 20, pattern: printable });
export const Role = Type.String({ minLength: 1, maxLength: 50, pattern: '^[A-Za-z0-9_.:-]+$' });

export const defaultRole = 'ROLE_USER';

export const CreateUserBody = Type.Object(
  {
    username: Username,
    email: Email,
    firstname: FirstName,
    lastname: Type.Optional(LastName),
    role: Type.Optional(Role),
    enabled: Type.Optional(Type.Boolean()),
    // No length limit here: every password that breaks the policy gets the original's single message.
    password: Type.String(),
  },
  { additionalProperties: false },
);
export type CreateUserBody = Static<typeof CreateUserBody>;

/** The original's clients send the whole user on update; role, enabled and password are accepted and ignored. */
export const UpdateUserBody = Type.Object(
  {
    username: Username,
    email: Email,
    firstname: FirstName,
    lastname: Type.Optional(LastName),
    role: Type.Optional(Role),
    enabled: Type.Optional(Type.Boolean()),
    password: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type UpdateUserBody = Static<typeof UpdateUserBody>;

export const UsernameParams = Type.Object({ username: Username }, { additionalProperties: false });
export type UsernameParams = Static<typeof UsernameParams>;

export const UserView = Type.Object({
  username: Type.String(),
  email: Type.String(),
  role: Type.String(),
  enabled: Type.Boolean(),
  firstname: Type.String(),
  lastname: Type.String(),
  /** The version of this user management service that answered (see docs/user-management.md). */
  appversion: Type.String(),
});
export type UserView = Static<typeof UserView>;

/** The error body of @canary/service-kit, declared so responses are serialized from a schema. */
export const ApiError = apiErrorSchema;

/** Failures any route can give: bad input, an internal error, the database being away. */
export const commonErrors = { 400: ApiError, 500: ApiError, 503: ApiError } as const;
/** Extra failures of routes that take a JSON body. */
export const bodyErrors = { 413: ApiError, 415: ApiError } as const;

/** 200 with no body at all, as the original answered; typed so handlers call `send()` without a payload. */
export const EmptyBody = Type.Unsafe<undefined>({ type: 'null', description: 'empty body' });
