import { isIP } from 'node:net';
import { FormatRegistry, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { fullFormats } from 'ajv-formats/dist/formats.js';

export type Env = Record<string, string | undefined>;

/** Thrown at boot when the environment does not fit the service's schema; the message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

// The e-mail format, with the definition Ajv applies to request bodies (ajv-formats').
const email = fullFormats.email;
if (!(email instanceof RegExp)) throw new Error('ajv-formats no longer defines "email" as a regular expression');
FormatRegistry.Set('email', (value) => email.test(value));

// Host names as DNS and Docker networks spell them (underscores included), dot-separated labels of at most 63
// characters, 253 in all; a last label of digits only is a mistyped IPv4 address ("999.1.1.1"), not a name.
const hostLabel = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
function isHostOrAddress(value: string): boolean {
  if (isIP(value) !== 0) return true;
  const labels = (value.endsWith('.') ? value.slice(0, -1) : value).split('.');
  return value.length <= 253 && labels.every((label) => hostLabel.test(label)) && !/^\d+$/.test(labels.at(-1) ?? '');
}
FormatRegistry.Set('host', isHostOrAddress);

// A plain decimal number: the environment is text, and "0x10", " 12", "1e3", "-0" or "8096.0" for a port is more
// likely a mistake. An integer is written without a fraction or leading zeros.
const decimal = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;
const integer = /^(?:0|-?[1-9]\d*)$/;

/** An environment string as the type its schema names, or unchanged (the check then says what is wrong). */
function coerce(schema: TSchema, raw: string): unknown {
  switch (schema.type) {
    case 'integer':
      return integer.test(raw) ? Number(raw) : raw;
    case 'number':
      return decimal.test(raw) ? Number(raw) : raw;
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : raw;
    default:
      return raw;
  }
}

/** One bad variable in words; values are never echoed, as the variable may hold a secret. */
function describe(error: ValueError): string {
  const variable = error.path.replace(/^\//, '');
  const schema = error.schema as TSchema & Record<string, unknown>;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${variable} is required`;
    case ValueErrorType.Kind:
      // The only custom kind in a config schema is stringEnum's.
      return `${variable} must be one of ${(schema.enum as string[]).join(', ')}`;
    case ValueErrorType.Integer:
      return `${variable} must be integer`;
    case ValueErrorType.Number:
      return `${variable} must be number`;
    case ValueErrorType.Boolean:
      return `${variable} must be boolean`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `${variable} must be >= ${String(schema.minimum)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `${variable} must be <= ${String(schema.maximum)}`;
    case ValueErrorType.StringMinLength:
      return `${variable} must NOT have fewer than ${String(schema.minLength)} characters`;
    case ValueErrorType.StringMaxLength:
      return `${variable} must NOT have more than ${String(schema.maxLength)} characters`;
    case ValueErrorType.StringPattern:
      return `${variable} must match pattern "${String(schema.pattern)}"`;
    case ValueErrorType.StringFormat:
      if (schema.format === 'host') return `${variable} must be a host name or an IP address`;
      return `${variable} must match format "${String(schema.format)}"`;
    default:
      return `${variable} is invalid`;
  }
}

/**
 * Reads the service's configuration from `env` only (never from a .env file or the rest of process.env),
 * applies the schema's defaults and turns numbers and booleans into their types.
 *
 * TypeBox checks it, not env-schema: env-schema's own Ajv and ajv-formats cost notification about a fifth of its
 * start-up and 6 MB of idle memory (docs/benchmarks.md), and TypeBox is loaded anyway for the schemas.
 */
export function loadConfig<T extends TObject>(schema: T, env: Env = process.env): Static<T> {
  const data: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(schema.properties)) {
    const raw = env[key];
    // Empty strings count as unset, as a Kubernetes manifest or compose file often leaves them.
    if (raw !== undefined && raw !== '') data[key] = coerce(property, raw);
  }
  const config = Value.Default(schema, data);
  // A missing variable also fails its own type check: the first error of each variable is the one that says why.
  const errors = new Map<string, ValueError>();
  for (const error of Value.Errors(schema, config)) if (!errors.has(error.path)) errors.set(error.path, error);
  if (errors.size > 0) throw new ConfigError(`Invalid environment: ${[...errors.values()].map(describe).join('; ')}`);
  return config as Static<T>;
}
