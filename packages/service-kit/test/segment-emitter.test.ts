import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startXrayDaemon, type XrayDaemon } from '@canary/testkit';
import { newTraceId } from '../src/tracing/ids.js';
import { emitSegment, maxDatagramBytes, SegmentQueue, type DatagramSender } from '../src/tracing/segment-emitter.js';
import { segmentDefaults, TraceSegment } from '../src/tracing/segment.js';

const xray = { sdk: 'X-Ray for Node.js', sdk_version: '3.12.0', package: '@canary/service-kit' };
const service = { runtime: 'node', runtime_version: process.version };
const defaults = segmentDefaults(xray, service);

let daemon: XrayDaemon;
let socket: Socket;
/** Sizes of the datagrams sent, in order. */
const sizes: number[] = [];
const sender: DatagramSender = {
  send(message) {
    sizes.push(message.length);
    socket.send(message);
  },
};

beforeAll(async () => {
  daemon = await startXrayDaemon();
  socket = createSocket('udp4');
  socket.connect(daemon.port, '127.0.0.1');
  await once(socket, 'connect');
});
afterEach(() => {
  daemon.clear();
  sizes.length = 0;
});
afterAll(async () => {
  socket.close();
  await daemon.close();
});

function segment(name = 'Emitter-Test', parentId?: string): TraceSegment {
  return new TraceSegment(name, newTraceId(), parentId, (closed) => emitSegment(sender, closed), defaults);
}

describe('a segment', () => {
  it('is sent once, when it and every subsegment are closed, as one document with its subsegments', async () => {
    const root = segment('Front', '53995c3f42cd8ad8');
    const call = root.addSubsegment('127.0.0.1');
    call.namespace = 'remote';
    const query = call.addSubsegment('db@127.0.0.1');
    root.close();
    query.close();
    expect(sizes).toEqual([]);
    call.http = { request: { url: 'http://127.0.0.1/x', method: 'GET', traced: true }, response: { status: 404, content_length: 2 } };
    call.flagStatus(404);
    call.close();
    root.close();

    const [document] = await daemon.waitForSegments(1, { name: 'Front' });
    expect(sizes).toHaveLength(1);
    expect(document).toEqual({
      name: 'Front',
      id: root.id,
      trace_id: root.traceId,
      parent_id: '53995c3f42cd8ad8',
      start_time: root.startTime,
      end_time: root.endTime,
      service,
      aws: { xray },
      subsegments: [
        {
          name: '127.0.0.1',
          id: call.id,
          start_time: call.startTime,
          end_time: call.endTime,
          namespace: 'remote',
          error: true,
          http: { request: { url: 'http://127.0.0.1/x', method: 'GET', traced: true }, response: { status: 404, content_length: 2 } },
          subsegments: [{ name: 'db@127.0.0.1', id: query.id, start_time: query.startTime, end_time: query.endTime }],
        },
      ],
    });
    // Microseconds, on one clock: each starts after its parent and ends when it was closed.
    expect(call.startTime).toBeGreaterThanOrEqual(root.startTime);
    expect(query.startTime).toBeGreaterThanOrEqual(call.startTime);
    expect(query.endTime).toBeGreaterThanOrEqual(root.endTime!);
    expect(call.endTime).toBeGreaterThanOrEqual(query.endTime!);
    expect(String(document!.start_time)).toMatch(/^\d{10}(\.\d{1,6})?$/);
    expect(root.id).toMatch(/^[0-9a-f]{16}$/);
    expect(root.traceId).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
  });

  it('records flags by status: 429 throttle and error, 5xx fault, 2xx and 3xx nothing', () => {
    const flags = [200, 302, 404, 429, 500, 503].map((status) => {
      const sub = segment().addSubsegment('s');
      sub.flagStatus(status);
      return [status, sub.error, sub.fault, sub.throttle];
    });
    expect(flags).toEqual([
      [200, false, false, false],
      [302, false, false, false],
      [404, true, false, false],
      [429, true, false, true],
      [500, false, true, false],
      [503, false, true, false],
    ]);
  });

  it('records a failure as a fault with the error type, message and stack frames', async () => {
    const root = segment('Failing');
    root.close(new TypeError('bad things'));
    const [document] = await daemon.waitForSegments(1, { name: 'Failing' });
    expect(document!.fault).toBe(true);
    const [exception] = document!.cause!.exceptions as { type: string; message: string; id: string; remote: boolean; stack: { path: string; line: number }[] }[];
    expect([exception!.type, exception!.message, exception!.remote]).toEqual(['TypeError', 'bad things', false]);
    expect(exception!.id).toMatch(/^[0-9a-f]{16}$/);
    expect(exception!.stack[0]!.path).toMatch(/segment-emitter\.test\.ts$/);
    expect(exception!.stack[0]!.line).toBeGreaterThan(0);
    expect(document!.cause!.working_directory).toBe(process.cwd());
  });

  it('keeps its annotations and the sampling rule that picked it', async () => {
    const root = segment('Annotated');
    root.annotations = { task: 'outbox' };
    root.ruleName = 'canary-rule';
    root.close();
    const [document] = await daemon.waitForSegments(1, { name: 'Annotated' });
    expect(document!.annotations).toEqual({ task: 'outbox' });
    expect(document!.aws).toEqual({ xray: { ...xray, rule_name: 'canary-rule' } });
  });
});

describe('a segment too large for one datagram', () => {
  it('is sent without its subsegments, which follow one datagram each, naming trace and parent', async () => {
    const root = segment('Large');
    const statement = `SELECT ${'x, '.repeat(300)}1`;
    const subs = Array.from({ length: 150 }, (_, i) => {
      const sub = root.addSubsegment(`db-${i}`);
      sub.sql = { url: 'mysql://db:3306/app', user: 'app', database_type: 'MySQL', driver_version: 'mysql2@3', preparation: 'statement', sanitized_query: statement };
      return sub;
    });
    for (const sub of subs) sub.close();
    root.close();

    const [document] = await daemon.waitForSegments(1, { name: 'Large' });
    await expect.poll(() => daemon.subsegmentsOf(document!).length).toBe(150);
    expect(document!.subsegments).toBeUndefined();
    expect(sizes).toHaveLength(151);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxDatagramBytes);
    const streamed = daemon.documents.filter((d) => d.type === 'subsegment');
    expect(new Set(streamed.map((d) => d.trace_id))).toEqual(new Set([root.traceId]));
    expect(new Set(streamed.map((d) => d.parent_id))).toEqual(new Set([root.id]));
    expect(streamed.map((d) => d.name).sort()).toEqual(subs.map((s) => s.name).sort());
    expect(daemon.malformed).toEqual([]);
  });

  it('splits further down the tree when one subsegment alone is too large', async () => {
    const root = segment('Deep');
    const call = root.addSubsegment('outer');
    const statement = `SELECT ${'y, '.repeat(1000)}1`;
    const inner = Array.from({ length: 40 }, (_, i) => {
      const sub = call.addSubsegment(`inner-${i}`);
      sub.sql = { url: 'mysql://db:3306/app', user: 'app', database_type: 'MySQL', driver_version: 'mysql2@3', preparation: 'call', sanitized_query: statement };
      return sub;
    });
    for (const sub of inner) sub.close();
    call.close();
    root.close();

    const [document] = await daemon.waitForSegments(1, { name: 'Deep' });
    await expect.poll(() => daemon.subsegmentsOf(document!).length).toBe(41);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxDatagramBytes);
    const outer = daemon.documents.find((d) => d.name === 'outer')!;
    expect([outer.type, outer.parent_id, outer.subsegments]).toEqual(['subsegment', root.id, undefined]);
    expect(daemon.documents.filter((d) => d.name.startsWith('inner-')).every((d) => d.parent_id === outer.id)).toBe(true);
  });
});

describe('the queue of closed segments', () => {
  function queued(queue: SegmentQueue, name: string): TraceSegment {
    return new TraceSegment(name, newTraceId(), undefined, (closed) => queue.push(closed), defaults);
  }

  it('sends them together, in the order they closed, once the oldest has waited flushMs', async () => {
    const queue = new SegmentQueue(sender, { flushMs: 200, maxQueued: 100 });
    const started = Date.now();
    for (const name of ['Q1', 'Q2', 'Q3']) queued(queue, name).close();
    expect(sizes).toEqual([]);
    await daemon.waitForSegments(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(daemon.segments().map((d) => d.name)).toEqual(['Q1', 'Q2', 'Q3']);
  });

  it('sends in bursts of at most 16 by default, which the daemon\'s default socket buffer takes from several processes at once', async () => {
    const queue = new SegmentQueue(sender, { flushMs: 100 });
    for (let i = 0; i < 40; i += 1) queued(queue, `B${i}`).close();
    // Two full bursts went at once; the other 8 wait for the timer.
    expect(sizes).toHaveLength(32);
    await daemon.waitForSegments(40);
    expect(sizes).toHaveLength(40);
    expect(daemon.segments().map((d) => d.name)).toEqual(Array.from({ length: 40 }, (_, i) => `B${i}`));
  });

  it('sends at once when maxQueued segments wait, and whatever is left on flush()', async () => {
    const queue = new SegmentQueue(sender, { flushMs: 60_000, maxQueued: 2 });
    queued(queue, 'M1').close();
    expect(sizes).toHaveLength(0);
    queued(queue, 'M2').close();
    expect(sizes).toHaveLength(2);
    queued(queue, 'M3').close();
    queue.flush();
    expect(sizes).toHaveLength(3);
    await daemon.waitForSegments(3);
    expect(daemon.segments().map((d) => d.name)).toEqual(['M1', 'M2', 'M3']);
    // Nothing left for the timer: flush() cleared it.
    queue.flush();
    expect(sizes).toHaveLength(3);
  });
});
