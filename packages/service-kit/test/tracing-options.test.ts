import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadSamplingRules, tracingOptions, type TracingConfig } from '../src/index.js';

const traceEverything = fileURLToPath(new URL('../../../docs/xray-sampling-all.json', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xray-options-'));
});

async function rulesFile(content: string): Promise<string> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, content);
  return file;
}

const config = (overrides: Partial<TracingConfig> = {}): TracingConfig => ({
  AWS_XRAY_SDK_ENABLED: true,
  AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:2000',
  AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
  ...overrides,
});

describe('tracingOptions', () => {
  it("names segments after the service's default unless AWS_XRAY_TRACING_NAME is set", () => {
    expect(tracingOptions(config(), 'User-Management-Microservice')).toEqual({
      enabled: true,
      segmentName: 'User-Management-Microservice',
      daemon: { host: '127.0.0.1', port: 2000 },
      contextMissing: 'LOG_ERROR',
    });
    expect(tracingOptions(config({ AWS_XRAY_TRACING_NAME: 'Renamed' }), 'Default').segmentName).toBe('Renamed');
  });

  it('keeps a host name for the daemon and the context-missing strategy', () => {
    const options = tracingOptions(config({ AWS_XRAY_DAEMON_ADDRESS: 'xray-service.default:2000', AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR' }), 'S');
    expect(options.daemon).toEqual({ host: 'xray-service.default', port: 2000 });
    expect(options.contextMissing).toBe('IGNORE_ERROR');
  });

  it('rejects a daemon port out of range, naming AWS_XRAY_DAEMON_ADDRESS', () => {
    expect(() => tracingOptions(config({ AWS_XRAY_DAEMON_ADDRESS: 'xray:70000' }), 'S')).toThrow(
      new ConfigError('Invalid environment: AWS_XRAY_DAEMON_ADDRESS must be host:port with a port from 1 to 65535'),
    );
  });

  it('is off with AWS_XRAY_SDK_ENABLED=false, without even reading the sampling file', () => {
    const options = tracingOptions(config({ AWS_XRAY_SDK_ENABLED: false, XRAY_SAMPLING_RULES_FILE: '/nonexistent.json' }), 'S');
    expect(options.enabled).toBe(false);
  });

  it('loads the rules of XRAY_SAMPLING_RULES_FILE', () => {
    const options = tracingOptions(config({ XRAY_SAMPLING_RULES_FILE: traceEverything }), 'S');
    expect(options.samplingRulesFile).toBe(traceEverything);
    expect(options.samplingRules?.default).toEqual({ fixed_target: 1, rate: 1 });
  });
});

describe('loadSamplingRules', () => {
  it('accepts the shipped trace-everything file, whose only rule leaves health probes out', () => {
    expect(loadSamplingRules(traceEverything)).toEqual({
      version: 2,
      rules: [
        {
          description: expect.any(String) as unknown,
          host: '*',
          http_method: 'GET',
          url_path: '*/health/*',
          fixed_target: 0,
          rate: 0,
        },
      ],
      default: { fixed_target: 1, rate: 1 },
    });
  });

  it('accepts version 1 rules, which match on service_name', async () => {
    const file = await rulesFile(
      JSON.stringify({ version: 1, default: { fixed_target: 0, rate: 0.1 }, rules: [{ service_name: '*', http_method: '*', url_path: '/x', fixed_target: 1, rate: 1 }] }),
    );
    expect(loadSamplingRules(file).version).toBe(1);
  });

  it.each([
    ['a missing file', null, /XRAY_SAMPLING_RULES_FILE cannot be read \(ENOENT\)/],
    ['text that is not JSON', '{ version: 2', /XRAY_SAMPLING_RULES_FILE is not JSON/],
    ['an unknown version', '{"version":3,"default":{"fixed_target":1,"rate":0.1}}', /\(version must be 1 or 2\)/],
    ['a rate above 1', '{"version":2,"default":{"fixed_target":1,"rate":1.5}}', /\/default\/rate Expected number to be less or equal to 1/],
    ['a fractional fixed_target', '{"version":2,"default":{"fixed_target":0.5,"rate":1}}', /\/default\/fixed_target Expected integer/],
    ['a rule without url_path', '{"version":2,"default":{"fixed_target":1,"rate":1},"rules":[{"host":"*","http_method":"*","fixed_target":1,"rate":1}]}', /\(\/rules\/0\/url_path Expected required property\)/],
    ['a version 2 rule with service_name', '{"version":2,"default":{"fixed_target":1,"rate":1},"rules":[{"service_name":"*","host":"*","http_method":"*","url_path":"*","fixed_target":1,"rate":1}]}', /\/rules\/0\/service_name Unexpected property/],
  ])('rejects %s with a message naming XRAY_SAMPLING_RULES_FILE and the file', async (_case, content, message) => {
    const file = content === null ? join(dir, 'missing.json') : await rulesFile(content);
    let thrown: unknown;
    try {
      loadSamplingRules(file);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(/^Invalid environment: XRAY_SAMPLING_RULES_FILE /);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message.endsWith(`: ${file}`)).toBe(true);
  });
});
