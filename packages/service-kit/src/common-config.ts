import { Kind, Type, TypeRegistry, type TString, type TUnsafe } from '@sinclair/typebox';

// stringEnum's schemas are of this kind, so that TypeBox's checks (loadConfig's) know them; Ajv sees a plain enum.
const stringEnumKind = 'StringEnum';
TypeRegistry.Set<{ enum: readonly string[] }>(stringEnumKind, (schema, value) => typeof value === 'string' && schema.enum.includes(value));

/** A string that must be one of `values`: a plain JSON-schema enum, so the boot error can list the choices. */
export function stringEnum<const T extends readonly string[]>(values: T, defaultValue?: T[number]): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({
    [Kind]: stringEnumKind,
    type: 'string',
    enum: [...values],
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });
}

/** A host name or IP address: checked at boot, so that a typo is named there rather than failing a connection later. */
export function hostName(defaultValue: string): TString {
  return Type.String({ default: defaultValue, format: 'host' });
}

/** Variables every service reads, with the same defaults everywhere. */
export const commonConfig = {
  HOST: hostName('0.0.0.0'),
  LOG_LEVEL: stringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  SHUTDOWN_GRACE_MS: Type.Integer({ default: 10_000, minimum: 0, maximum: 600_000 }),
  SHUTDOWN_DRAIN_MS: Type.Integer({ default: 0, minimum: 0, maximum: 600_000 }),
};

/** AWS X-Ray variables, read by both services (the segment name's default depends on the service). */
export const tracingConfig = {
  AWS_XRAY_SDK_ENABLED: Type.Boolean({ default: true }),
  AWS_XRAY_TRACING_NAME: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  AWS_XRAY_DAEMON_ADDRESS: Type.String({ default: '127.0.0.1:2000', pattern: '^[^\\s:]+:\\d{1,5}$' }),
  AWS_XRAY_CONTEXT_MISSING: stringEnum(['LOG_ERROR', 'RUNTIME_ERROR', 'IGNORE_ERROR'], 'LOG_ERROR'),
  /** Path of a JSON sampling-rules file (X-Ray's local rules format); unset keeps the SDK's default rules. */
  XRAY_SAMPLING_RULES_FILE: Type.Optional(Type.String({ minLength: 1 })),
};
