import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError, hostName, loadConfig, stringEnum } from '../src/index.js';

const schema = Type.Object({
  PORT: Type.Integer({ default: 8080, minimum: 1, maximum: 65535 }),
  RATIO: Type.Number({ default: 0.5, minimum: 0, maximum: 1 }),
  ENABLED: Type.Boolean({ default: true }),
  MODE: stringEnum(['fast', 'safe'], 'safe'),
  NAME: Type.String({ default: 'svc', minLength: 2, maxLength: 5, pattern: '^[a-z]+$' }),
  FROM: Type.String({ default: 'no-reply@example.com', format: 'email' }),
  TOKEN: Type.String(),
  NOTE: Type.Optional(Type.String({ minLength: 1 })),
  TARGET: hostName('localhost'),
});

const valid = { TOKEN: 'abc' };

function errorOf(env: Record<string, string>): string {
  try {
    loadConfig(schema, { ...valid, ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('applies every default and reads nothing but the schema', () => {
    expect(loadConfig(schema, { ...valid, UNRELATED: 'x' })).toEqual({
      PORT: 8080,
      RATIO: 0.5,
      ENABLED: true,
      MODE: 'safe',
      NAME: 'svc',
      FROM: 'no-reply@example.com',
      TOKEN: 'abc',
      TARGET: 'localhost',
    });
  });

  it('turns numbers and booleans into their types', () => {
    const config = loadConfig(schema, { ...valid, PORT: '443', RATIO: '0.25', ENABLED: 'false', MODE: 'fast', NOTE: 'n', FROM: 'ops@example.org' });
    expect(config).toEqual({ PORT: 443, RATIO: 0.25, ENABLED: false, MODE: 'fast', NAME: 'svc', FROM: 'ops@example.org', TOKEN: 'abc', NOTE: 'n', TARGET: 'localhost' });
  });

  it('treats an empty string as unset', () => {
    expect(loadConfig(schema, { ...valid, PORT: '', ENABLED: '', NOTE: '' })).toMatchObject({ PORT: 8080, ENABLED: true });
    expect(loadConfig(schema, { ...valid, NOTE: '' })).not.toHaveProperty('NOTE');
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT must be integer'],
    [{ PORT: '12.5' }, 'PORT must be integer'],
    [{ PORT: ' 12' }, 'PORT must be integer'],
    [{ PORT: '0x10' }, 'PORT must be integer'],
    [{ PORT: '1e3' }, 'PORT must be integer'],
    [{ PORT: '-0' }, 'PORT must be integer'],
    [{ PORT: '8096.0' }, 'PORT must be integer'],
    [{ PORT: '08096' }, 'PORT must be integer'],
    [{ RATIO: '.5' }, 'RATIO must be number'],
    [{ RATIO: '00.5' }, 'RATIO must be number'],
    [{ TARGET: '999.1.1.1' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: ' ' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: 'db host' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: 'mysql:3306' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: 'http://mysql' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: '-mysql' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: 'a..b' }, 'TARGET must be a host name or an IP address'],
    [{ TARGET: `${'a'.repeat(64)}.example.com` }, 'TARGET must be a host name or an IP address'],
    [{ PORT: '0' }, 'PORT must be >= 1'],
    [{ PORT: '65536' }, 'PORT must be <= 65535'],
    [{ RATIO: 'half' }, 'RATIO must be number'],
    [{ RATIO: '1.5' }, 'RATIO must be <= 1'],
    [{ ENABLED: '1' }, 'ENABLED must be boolean'],
    [{ ENABLED: 'TRUE' }, 'ENABLED must be boolean'],
    [{ MODE: 'Fast' }, 'MODE must be one of fast, safe'],
    [{ NAME: 'a' }, 'NAME must NOT have fewer than 2 characters'],
    [{ NAME: 'abcdef' }, 'NAME must NOT have more than 5 characters'],
    [{ NAME: 'AB' }, 'NAME must match pattern "^[a-z]+$"'],
    [{ FROM: 'nobody' }, 'FROM must match format "email"'],
    [{ NOTE: 'x', TOKEN: '' }, 'TOKEN is required'],
  ])('refuses %j: %s', (env, message) => {
    expect(errorOf(env)).toBe(`Invalid environment: ${message}`);
  });

  it.each([
    'localhost',
    'mysql',
    'xray-service.default',
    'usermgmtdb.cxojydmxwly6.us-east-1.rds.amazonaws.com',
    'email-smtp.us-east-1.amazonaws.com.',
    'user_management',
    '10.0.0.7',
    '0.0.0.0',
    '::',
    '::1',
    'fd00::7',
  ])('takes the host %s as it is', (host) => {
    expect(loadConfig(schema, { ...valid, TARGET: host }).TARGET).toBe(host);
  });

  it('names every bad variable once, and never echoes a value', () => {
    const message = errorOf({ TOKEN: '', PORT: 's3cret-port', MODE: 's3cret-mode' });
    expect(message).toBe('Invalid environment: TOKEN is required; PORT must be integer; MODE must be one of fast, safe');
    expect(message).not.toContain('s3cret');
  });
});
