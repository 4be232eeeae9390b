import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startXrayDaemon, type XrayDaemon } from '@canary/testkit';
import { closedPort, startFixture, type FixtureProcess, type LogLine } from './support/fixture-process.js';

const traceEverything = fileURLToPath(new URL('../../../docs/xray-sampling-all.json', import.meta.url));

interface EchoBody {
  traceHeader: string | null;
  segment: { id: string; trace_id: string } | null;
}
interface CallBody {
  before: unknown;
  answers: { statusCode: number; body: EchoBody }[];
}

let daemon: XrayDaemon;
let back: FixtureProcess;
const started: FixtureProcess[] = [];

async function start(env: Record<string, string>): Promise<FixtureProcess> {
  const fixture = await startFixture(env);
  started.push(fixture);
  return fixture;
}

beforeAll(async () => {
  daemon = await startXrayDaemon();
  back = await startFixture({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything, DEFAULT_SEGMENT_NAME: 'Back-Service' });
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((fixture) => fixture.stop()));
});

afterAll(async () => {
  await back?.stop();
  await daemon?.close();
});

const warnings = (logs: LogLine[]): LogLine[] => logs.filter((line) => line.level >= 40);

/** 20 requests one after another, each calling the back service: all must answer 200. */
async function twentyCalls(fixture: FixtureProcess): Promise<CallBody[]> {
  const bodies: CallBody[] = [];
  for (let i = 0; i < 20; i += 1) {
    const response = await fixture.get<CallBody>('/call?via=pool');
    expect(response.status).toBe(200);
    bodies.push(response.body);
  }
  return bodies;
}

describe('the daemon address', () => {
  it('may be a host name: it is resolved and segments reach the daemon', async () => {
    const front = await start({
      AWS_XRAY_DAEMON_ADDRESS: `localhost:${daemon.port}`,
      XRAY_SAMPLING_RULES_FILE: traceEverything,
      AWS_XRAY_TRACING_NAME: 'Named-Host',
      DOWNSTREAM: back.origin,
    });
    const probe = randomUUID();
    expect((await front.get(`/plain?probe=${probe}`)).status).toBe(200);
    await expect.poll(() => daemon.segments({ name: 'Named-Host' }).filter((s) => s.http?.request?.url?.includes(probe)).length, { timeout: 10_000 }).toBe(1);
    expect(warnings(front.logs)).toEqual([]);
  });

  it('that does not resolve neither fails nor stops requests, and is logged once', async () => {
    const front = await start({
      AWS_XRAY_DAEMON_ADDRESS: 'does-not-exist.invalid:2000',
      XRAY_SAMPLING_RULES_FILE: traceEverything,
      AWS_XRAY_TRACING_NAME: 'Nowhere',
      DOWNSTREAM: back.origin,
    });
    const bodies = await twentyCalls(front);
    // Tracing still works inside the service: the downstream joins the trace, only the sending is dropped.
    expect(bodies.every((body) => /^Root=1-[0-9a-f-]+;Parent=[0-9a-f]{16};Sampled=1$/.test(body.answers[0]!.body.traceHeader ?? ''))).toBe(true);
    const dnsLinesNow = () => front.logs.filter((line) => line.component === 'xray' && /does not resolve/.test(line.msg));
    // Log lines come through the child's stdout pipe, which may deliver them after the HTTP answers.
    await expect.poll(() => dnsLinesNow().length, { timeout: 5000 }).toBeGreaterThan(0);
    const dnsLines = dnsLinesNow();
    expect(dnsLines).toHaveLength(1);
    expect(dnsLines[0]).toMatchObject({ level: 40, host: 'does-not-exist.invalid', code: 'ENOTFOUND' });
    expect(warnings(front.logs)).toEqual(dnsLines);
    expect(daemon.segments({ name: 'Nowhere' })).toEqual([]);
  });

  it('on a port nothing listens on neither fails requests nor warns: one info line says so', async () => {
    const front = await start({
      AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${await closedPort()}`,
      XRAY_SAMPLING_RULES_FILE: traceEverything,
      AWS_XRAY_TRACING_NAME: 'Closed-Port',
      DOWNSTREAM: back.origin,
    });
    await twentyCalls(front);
    const xrayLines = () => front.logs.filter((line) => line.component === 'xray').map((line) => [line.level, line.msg]);
    await expect.poll(() => xrayLines().length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(warnings(front.logs)).toEqual([]);
    expect(xrayLines()).toEqual([
      [30, 'Nothing listens on the X-Ray daemon address; segments are lost until something does'],
    ]);
  });
});

describe('AWS_XRAY_SDK_ENABLED=false', () => {
  it('switches tracing off completely: the SDK is never loaded, no segment, no header downstream', async () => {
    const front = await start({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, AWS_XRAY_SDK_ENABLED: 'false', AWS_XRAY_TRACING_NAME: 'Switched-Off', DOWNSTREAM: back.origin });
    const response = await front.get<CallBody>('/call?via=pool');
    expect(response.status).toBe(200);
    expect(response.body.before).toBeNull();
    const echo = response.body.answers[0]!.body;
    expect(echo.traceHeader).toBeNull();
    // The back service still traces, starting a trace of its own.
    const [backSegment] = await daemon.waitForSegments(1, { name: 'Back-Service', traceId: echo.segment!.trace_id });
    expect(backSegment!.parent_id).toBeUndefined();
    expect((await front.get('/modules')).body).toEqual({ xrayLoaded: false, clsNamespace: false });
    // Tracing on loads the SDK, in manual mode: no cls-hooked namespace, so none of its async hooks.
    expect((await back.get('/modules')).body).toEqual({ xrayLoaded: true, clsNamespace: false });
    expect(daemon.segments({ name: 'Switched-Off' })).toEqual([]);
    expect(front.logs.filter((line) => /X-Ray/.test(line.msg))).toEqual([]);
  });
});

describe('AWS_XRAY_CONTEXT_MISSING', () => {
  async function backgroundOutcome(fixture: FixtureProcess): Promise<EchoBody | { error: string }> {
    expect((await fixture.get('/background?task=0')).status).toBe(202);
    let answers: (EchoBody | { error: string })[] = [];
    await expect
      .poll(async () => {
        answers = [...answers, ...(await fixture.get<(EchoBody | { error: string })[]>('/background-results')).body];
        return answers.length;
      })
      .toBe(1);
    return answers[0]!;
  }

  it('IGNORE_ERROR: a call outside any segment goes out untraced without a word', async () => {
    const front = await start({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR', DOWNSTREAM: back.origin });
    expect(await backgroundOutcome(front)).toMatchObject({ traceHeader: null });
    expect(warnings(front.logs)).toEqual([]);
  });

  it('RUNTIME_ERROR: a call outside any segment fails', async () => {
    const front = await start({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, AWS_XRAY_CONTEXT_MISSING: 'RUNTIME_ERROR', DOWNSTREAM: back.origin });
    expect(await backgroundOutcome(front)).toEqual({
      error: 'Failed to get the current sub/segment from the context: GET /echo runs outside any request or traceTask',
    });
  });
});

describe('sampling', () => {
  it('follows XRAY_SAMPLING_RULES_FILE: a rate of 0 sends nothing and tells the downstream Sampled=0', async () => {
    const { writeFile, mkdtemp } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(await mkdtemp(join(tmpdir(), 'xray-rules-')), 'none.json');
    await writeFile(file, JSON.stringify({ version: 2, default: { fixed_target: 0, rate: 0 } }));
    const front = await start({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: file, AWS_XRAY_TRACING_NAME: 'Never-Sampled', DOWNSTREAM: back.origin });
    const bodies = await twentyCalls(front);
    expect(bodies.every((body) => body.answers[0]!.body.traceHeader!.endsWith(';Sampled=0'))).toBe(true);
    // A caller that leaves the decision to the service (Sampled=?) is told it, with the trace id it will carry.
    const asked = await fetch(new URL('/plain', front.origin), { headers: { 'x-amzn-trace-id': 'Sampled=?' } });
    expect(asked.headers.get('x-amzn-trace-id')).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$/);
    expect(daemon.segments({ name: 'Never-Sampled' })).toEqual([]);
  });

  it('without a rules file uses the SDK default (1 a second, then 5%) and logs nothing per request', async () => {
    const front = await start({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, AWS_XRAY_TRACING_NAME: 'Default-Sampling', DOWNSTREAM: back.origin });
    const probes = Array.from({ length: 60 }, () => randomUUID());
    await Promise.all(probes.map((probe) => front.get(`/plain?probe=${probe}`)));
    await expect.poll(() => daemon.segments({ name: 'Default-Sampling' }).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    const sampled = daemon.segments({ name: 'Default-Sampling' }).length;
    expect(sampled).toBeLessThan(30);
    // No daemon sampling API answers here: the SDK says so once (an info line, not a warning: it is the
    // documented fallback), then uses its default rules.
    await expect
      .poll(() => front.logs.filter((line) => line.component === 'xray').map(({ level, msg, reason, err }) => ({ level, msg, reason, err })), { timeout: 10_000 })
      .toEqual([
        {
          level: 30,
          msg: "no sampling rules from the X-Ray daemon's sampling API; using the SDK's default rules",
          reason: expect.stringMatching(/^Failed to connect to X-Ray daemon at /),
          err: undefined,
        },
      ]);
  });

  it('rejects a broken rules file at start with a message naming XRAY_SAMPLING_RULES_FILE', async () => {
    const { writeFile, mkdtemp } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(await mkdtemp(join(tmpdir(), 'xray-rules-')), 'broken.json');
    await writeFile(file, JSON.stringify({ version: 2, default: { fixed_target: 1, rate: 5 } }));
    const failure = startFixture({ AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: file });
    await expect(failure).rejects.toThrow(/XRAY_SAMPLING_RULES_FILE is not an X-Ray sampling-rules file \(\/default\/rate Expected number to be less or equal to 1\)/);
  });
});
