import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from '../config.js';

const reservoir = {
  /** Requests per second sampled before `rate` applies. */
  fixed_target: Type.Integer({ minimum: 0 }),
  rate: Type.Number({ minimum: 0, maximum: 1 }),
};

const ruleFields = {
  description: Type.Optional(Type.String()),
  http_method: Type.String({ minLength: 1 }),
  url_path: Type.String({ minLength: 1 }),
  ...reservoir,
};

/** X-Ray's local sampling-rules file (the SDK's format, versions 1 and 2), checked before the SDK sees it. */
export const samplingRulesSchema = Type.Union([
  Type.Object(
    {
      version: Type.Literal(2),
      default: Type.Object(reservoir, { additionalProperties: false }),
      rules: Type.Optional(Type.Array(Type.Object({ host: Type.String({ minLength: 1 }), ...ruleFields }, { additionalProperties: false }))),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      version: Type.Literal(1),
      default: Type.Object(reservoir, { additionalProperties: false }),
      rules: Type.Optional(
        Type.Array(Type.Object({ service_name: Type.String({ minLength: 1 }), ...ruleFields }, { additionalProperties: false })),
      ),
    },
    { additionalProperties: false },
  ),
]);

export type SamplingRules = Static<typeof samplingRulesSchema>;

/** The variable that names the file; every message names it so the operator knows what to fix. */
const variable = 'XRAY_SAMPLING_RULES_FILE';

function problems(value: unknown): string {
  // A union reports "expected one of"; checking against the variant the version asks for names the real fault.
  const version = (value as { version?: unknown } | null)?.version;
  const variant = samplingRulesSchema.anyOf.find((schema) => schema.properties.version.const === version);
  if (!variant) return 'version must be 1 or 2';
  // One message per field: a missing field would otherwise also be reported as "not a string".
  const byPath = new Map<string, string>();
  for (const error of Value.Errors(variant, value)) {
    if (!byPath.has(error.path)) byPath.set(error.path, `${error.path || '/'} ${error.message}`);
  }
  return [...byPath.values()].slice(0, 5).join('; ');
}

/** Reads and checks a sampling-rules file at start, so a typo stops the service with a message, not at the first request. */
export function loadSamplingRules(path: string): SamplingRules {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Invalid environment: ${variable} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ${path}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Invalid environment: ${variable} is not JSON (${(err as Error).message}): ${path}`);
  }
  if (!Value.Check(samplingRulesSchema, value)) {
    throw new ConfigError(`Invalid environment: ${variable} is not an X-Ray sampling-rules file (${problems(value)}): ${path}`);
  }
  return value;
}
