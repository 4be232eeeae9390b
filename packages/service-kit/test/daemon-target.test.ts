import type { FastifyBaseLogger } from 'fastify';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { startXrayDaemon, xrayProtocolHeader, type XrayDaemon } from '@canary/testkit';
import { DaemonTarget, type Lookup } from '../src/tracing/daemon-target.js';
import { closedPort } from './support/fixture-process.js';

interface Logged {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** A logger keeping what it is given, shaped as fastify's. */
function recordingLogger(): { log: FastifyBaseLogger; lines: Logged[] } {
  const lines: Logged[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => lines.push({ level, fields, msg });
  const log = {
    level: 'info',
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    silent: () => undefined,
    child: () => log,
  } as unknown as FastifyBaseLogger;
  return { log, lines };
}

/** A DNS answer the test decides: `answer` is a comma list of addresses, or an error code to fail with. */
function scriptedLookup(): { lookup: Lookup; answer: string; calls: number } {
  const state = {
    answer: 'ENOTFOUND',
    calls: 0,
    lookup: async (host: string) => {
      state.calls += 1;
      if (/^\d/.test(state.answer)) return state.answer.split(',').map((address) => ({ address, family: 4 }));
      throw Object.assign(new Error(`getaddrinfo ${state.answer} ${host}`), { code: state.answer });
    },
  };
  return state;
}

function segment(id: string): Buffer {
  return Buffer.from(`${xrayProtocolHeader}\n${JSON.stringify({ id, trace_id: '1-00000000-000000000000000000000000', name: 'T', start_time: 1 })}`);
}

function sendThrough(target: DaemonTarget, id: string): void {
  target.send(segment(id));
}

let daemon: XrayDaemon;
const targets: DaemonTarget[] = [];
beforeAll(async () => {
  daemon = await startXrayDaemon();
});
afterEach(() => {
  for (const target of targets.splice(0)) target.close();
  daemon.clear();
});
afterAll(async () => {
  await daemon.close();
});

function target(settings: Omit<ConstructorParameters<typeof DaemonTarget>[0], 'port'>): DaemonTarget {
  const created = new DaemonTarget({ port: daemon.port, ...settings });
  targets.push(created);
  return created;
}

describe('DaemonTarget', () => {
  it('sends to an IP address at once, without any lookup', async () => {
    const dns = scriptedLookup();
    const { log, lines } = recordingLogger();
    const sender = target({ host: '127.0.0.1', log, lookup: dns.lookup });
    expect(sender.ip).toBe('127.0.0.1');
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.1');
    sendThrough(sender, 'a1');
    await daemon.waitForSegments(1);
    expect(daemon.documents.map((d) => d.id)).toEqual(['a1']);
    expect(dns.calls).toBe(0);
    expect(lines).toEqual([]);
  });

  it('resolves a host name once at start and sends every datagram to the address it got', async () => {
    const dns = scriptedLookup();
    dns.answer = '127.0.0.1';
    const { log, lines } = recordingLogger();
    const sender = target({ host: 'xray-service.default', log, lookup: dns.lookup });
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.1');
    for (const id of ['b1', 'b2', 'b3']) sendThrough(sender, id);
    await daemon.waitForSegments(3);
    expect(dns.calls).toBe(1);
    expect(lines).toEqual([]);
  });

  it('that does not resolve drops segments, logs once over many failures, and says when it resolves again', async () => {
    const dns = scriptedLookup();
    const { log, lines } = recordingLogger();
    const sender = target({ host: 'does-not-exist.invalid', log, lookup: dns.lookup, retryMs: 20 });
    await expect.poll(() => dns.calls).toBeGreaterThanOrEqual(5);
    for (const id of ['c1', 'c2']) sendThrough(sender, id);
    expect(sender.dropped).toBe(2);
    expect(lines.map((line) => [line.level, line.msg, line.fields.code])).toEqual([
      ['warn', 'X-Ray daemon host (AWS_XRAY_DAEMON_ADDRESS) does not resolve: segments are dropped until it does', 'ENOTFOUND'],
    ]);

    dns.answer = '127.0.0.1';
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.1');
    sendThrough(sender, 'c3');
    await daemon.waitForSegments(1);
    expect(daemon.documents.map((d) => d.id)).toEqual(['c3']);
    expect(lines.slice(1).map((line) => [line.level, line.msg, line.fields.dropped])).toEqual([
      ['info', 'X-Ray daemon host resolves again; sending segments', 2],
    ]);
  });

  it('keeps its last address through a later DNS failure, and follows a move', async () => {
    const dns = scriptedLookup();
    dns.answer = '127.0.0.1';
    const { log, lines } = recordingLogger();
    const sender = target({ host: 'xray-service.default', log, lookup: dns.lookup, refreshMs: 20, retryMs: 20 });
    await expect.poll(() => sender.ip).toBe('127.0.0.1');
    dns.answer = 'EAI_AGAIN';
    const failedAt = dns.calls;
    await expect.poll(() => dns.calls).toBeGreaterThan(failedAt + 2);
    expect(sender.ip).toBe('127.0.0.1');
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.1');
    sendThrough(sender, 'd1');
    await daemon.waitForSegments(1);
    dns.answer = '127.0.0.2';
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.2');
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      ['warn', 'X-Ray daemon host (AWS_XRAY_DAEMON_ADDRESS) does not resolve: segments still go to its last address'],
      ['info', 'X-Ray daemon host resolves again; sending segments'],
    ]);
  });

  it('keeps its address while a name with several addresses still lists it, in any order', async () => {
    const dns = scriptedLookup();
    dns.answer = '127.0.0.1,127.0.0.3';
    const { log, lines } = recordingLogger();
    const sender = target({ host: 'xray-service', log, lookup: dns.lookup, refreshMs: 10 });
    await expect.poll(() => sender.ip).toBe('127.0.0.1');
    dns.answer = '127.0.0.3,127.0.0.1';
    const calls = dns.calls;
    await expect.poll(() => dns.calls).toBeGreaterThan(calls + 2);
    expect(sender.ip).toBe('127.0.0.1');
    dns.answer = '127.0.0.3';
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.3');
    expect(lines.map((line) => [line.level, line.msg, line.fields.previous])).toEqual([['info', 'X-Ray daemon host moved to a new address', '127.0.0.1']]);
  });

  it('stops looking up and sending once closed', async () => {
    const dns = scriptedLookup();
    dns.answer = '127.0.0.1';
    const { log } = recordingLogger();
    const sender = target({ host: 'xray-service.default', log, lookup: dns.lookup, refreshMs: 10 });
    await expect.poll(() => sender.ip).toBe('127.0.0.1');
    sender.close();
    const calls = dns.calls;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(dns.calls).toBe(calls);
    sendThrough(sender, 'e1');
    expect(sender.dropped).toBe(1);
  });

  it('warns about a datagram too large to send, with its size, and keeps sending the others', async () => {
    const { log, lines } = recordingLogger();
    const sender = target({ host: '127.0.0.1', log });
    await expect.poll(() => sender.connectedTo).toBe('127.0.0.1');
    sender.send(Buffer.alloc(70_000, 0x20));
    sendThrough(sender, 'g1');
    await daemon.waitForSegments(1);
    expect(daemon.documents.map((d) => d.id)).toEqual(['g1']);
    await expect.poll(() => lines.map((line) => [line.level, line.msg, line.fields.bytes])).toEqual([
      ['warn', 'X-Ray segment too large to send; it is lost', 70_000],
    ]);
  });

  it('says once, at info, that nothing listens on the address, and keeps sending', async () => {
    const { log, lines } = recordingLogger();
    const closed = new DaemonTarget({ host: '127.0.0.1', port: await closedPort(), log });
    targets.push(closed);
    await expect.poll(() => closed.connectedTo).toBe('127.0.0.1');
    // The kernel reports the refusal of one datagram on a later send.
    for (let i = 0; i < 20; i += 1) {
      sendThrough(closed, `f${i}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(lines.map((line) => [line.level, line.msg])).toEqual([['info', 'Nothing listens on the X-Ray daemon address; segments are lost until something does']]);
  });
});
