import envSchema from 'env-schema';
import addFormats from 'ajv-formats';
import type { Static, TObject } from '@sinclair/typebox';

export type Env = Record<string, string | undefined>;

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Thrown at boot when the environment does not fit the service's schema; the message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function describe(error: AjvError): string {
  const variable = error.instancePath.replace(/^\//, '');
  switch (error.keyword) {
    case 'required':
      return `${String(error.params.missingProperty)} is required`;
    case 'enum':
      return `${variable} must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`;
    default:
      // Values are never echoed: the variable may hold a secret.
      return `${variable} ${error.message ?? 'is invalid'}`;
  }
}

/**
 * Reads the service's configuration from `env` only (never from a .env file or the rest of process.env),
 * applies the schema's defaults and coerces numbers and booleans.
 */
export function loadConfig<T extends TObject>(schema: T, env: Env = process.env): Static<T> {
  // Empty strings count as unset, as a Kubernetes manifest or compose file often leaves them.
  const data = Object.fromEntries(
    Object.keys(schema.properties)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  try {
    return envSchema<Static<T>>({
      schema,
      data,
      env: false,
      dotenv: false,
      ajv: { customOptions: (ajv) => addFormats.default(ajv, ['email', 'uri', 'hostname']) },
    });
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!errors) throw err;
    throw new ConfigError(`Invalid environment: ${errors.map(describe).join('; ')}`);
  }
}
