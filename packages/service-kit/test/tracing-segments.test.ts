import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXrayDaemon, type XrayDaemon, type XrayDocument } from '@canary/testkit';
import { closedPort, concurrently, startFixture, type FixtureProcess, type LogLine } from './support/fixture-process.js';

const traceEverything = fileURLToPath(new URL('../../../docs/xray-sampling-all.json', import.meta.url));

interface SegmentRef {
  id: string;
  trace_id: string;
}
interface EchoBody {
  traceHeader: string | null;
  segment: SegmentRef | null;
}
interface CallBody {
  before: SegmentRef;
  after: SegmentRef;
  answers: { statusCode: number; body: EchoBody }[];
}

let daemon: XrayDaemon;
let front: FixtureProcess;
let back: FixtureProcess;

beforeAll(async () => {
  daemon = await startXrayDaemon();
  const tracing = { AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything };
  // The back service keeps its default name; the front one is renamed by AWS_XRAY_TRACING_NAME.
  back = await startFixture({ ...tracing, DEFAULT_SEGMENT_NAME: 'Back-Service' });
  front = await startFixture({ ...tracing, DEFAULT_SEGMENT_NAME: 'Unused-Default', AWS_XRAY_TRACING_NAME: 'Front-Service', DOWNSTREAM: back.origin });
});

afterAll(async () => {
  await front?.stop();
  await back?.stop();
  await daemon?.close();
});

/** The one Front-Service segment whose URL carries `probe`, once it has arrived. */
async function frontSegment(probe: string): Promise<XrayDocument> {
  const matching = () => daemon.segments({ name: 'Front-Service' }).filter((s) => s.http?.request?.url?.includes(probe));
  await expect.poll(() => matching().length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
  const found = matching();
  expect(found).toHaveLength(1);
  return found[0]!;
}

function copies(id: string): number {
  return daemon.documents.filter((document) => document.id === id).length;
}

function problems(logs: LogLine[]): LogLine[] {
  return logs.filter((line) => line.level >= 40 || /sub\/segment/.test(line.msg));
}

describe('incoming requests', () => {
  it('become one segment each, named by AWS_XRAY_TRACING_NAME, with method, URL, client, status and no flags', async () => {
    const probe = randomUUID();
    const response = await front.get(`/plain?probe=${probe}`, { 'user-agent': 'tracing-test/1.0' });
    expect(response.status).toBe(200);

    const segment = await frontSegment(probe);
    expect(segment.http).toEqual({
      request: { method: 'GET', url: `${front.origin}/plain?probe=${probe}`, client_ip: '127.0.0.1', user_agent: 'tracing-test/1.0' },
      response: { status: 200, content_length: 11 },
    });
    expect(segment.trace_id).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(segment.parent_id).toBeUndefined();
    expect(segment.in_progress).toBeUndefined();
    expect(segment.end_time).toBeGreaterThanOrEqual(segment.start_time);
    expect([segment.error, segment.fault, segment.throttle]).toEqual([undefined, undefined, undefined]);
    expect(copies(segment.id)).toBe(1);
    expect(daemon.malformed).toEqual([]);
  });

  it('are named after the service default when AWS_XRAY_TRACING_NAME is unset', async () => {
    const response = await back.get<EchoBody>('/echo');
    expect(response.status).toBe(200);
    const [segment] = await daemon.waitForSegments(1, { name: 'Back-Service', traceId: response.body.segment!.trace_id });
    expect(segment!.id).toBe(response.body.segment!.id);
  });

  it('flag a 404 as an error, without a cause', async () => {
    const probe = randomUUID();
    expect((await front.get(`/no-such-route?probe=${probe}`)).status).toBe(404);
    const segment = await frontSegment(probe);
    expect(segment.http?.response?.status).toBe(404);
    expect([segment.error, segment.fault, segment.throttle, segment.cause]).toEqual([true, undefined, undefined, undefined]);
  });

  it('flag a 429 as throttled and an error', async () => {
    const probe = randomUUID();
    expect((await front.get(`/throttled?probe=${probe}`)).status).toBe(429);
    const segment = await frontSegment(probe);
    expect([segment.error, segment.fault, segment.throttle]).toEqual([true, undefined, true]);
  });

  it('flag a thrown error as a fault with the error as its cause, sent once', async () => {
    const probe = randomUUID();
    expect((await front.get(`/boom?probe=${probe}`)).status).toBe(500);
    const segment = await frontSegment(probe);
    expect(segment.http?.response?.status).toBe(500);
    expect(segment.fault).toBe(true);
    expect(segment.error).toBeUndefined();
    expect(segment.cause?.exceptions?.map((e) => [e.type, e.message])).toEqual([['Error', 'kaboom']]);
    expect(copies(segment.id)).toBe(1);
  });

  it('record the cause of a 5xx a handler chose (HttpError 503)', async () => {
    const probe = randomUUID();
    expect((await front.get(`/unavailable?probe=${probe}`)).status).toBe(503);
    const segment = await frontSegment(probe);
    expect(segment.fault).toBe(true);
    expect(segment.cause?.exceptions?.map((e) => e.message)).toEqual(['downstream is down']);
  });

  it("continue a caller's X-Amzn-Trace-Id: same trace, the caller's id as parent", async () => {
    const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const probe = randomUUID();
    await front.get(`/plain?probe=${probe}`, { 'x-amzn-trace-id': `Root=${root};Parent=53995c3f42cd8ad8;Sampled=1` });
    const segment = await frontSegment(probe);
    expect(segment.trace_id).toBe(root);
    expect(segment.parent_id).toBe('53995c3f42cd8ad8');
  });

  it('tell a caller that left the decision to them (Sampled=?) what it was, and only such a caller', async () => {
    const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const probe = randomUUID();
    const asked = await front.get(`/plain?probe=${probe}`, { 'x-amzn-trace-id': `Root=${root};Sampled=?` });
    expect(asked.headers.get('x-amzn-trace-id')).toBe(`Root=${root};Sampled=1`);
    expect((await frontSegment(probe)).trace_id).toBe(root);
    const told = await front.get(`/plain?probe=${randomUUID()}`, { 'x-amzn-trace-id': `Root=${root};Parent=53995c3f42cd8ad8;Sampled=1` });
    expect(told.headers.get('x-amzn-trace-id')).toBeNull();
  });

  it("keep a caller's decision not to sample, and pass it downstream", async () => {
    const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const logsBefore = front.logs.length;
    const response = await front.get<CallBody>('/call?via=pool', { 'x-amzn-trace-id': `Root=${root};Parent=53995c3f42cd8ad8;Sampled=0` });
    expect(response.status).toBe(200);
    // The request runs in its unsampled trace: the caller's trace id, no segment id, and no missing context.
    expect(response.body.before).toEqual({ trace_id: root });
    expect(response.body.after).toEqual({ trace_id: root });
    expect(problems(front.logs.slice(logsBefore))).toEqual([]);
    const header = response.body.answers[0]!.body.traceHeader!;
    // No segment is made for an unsampled request, so there is no Parent to name.
    expect(header).toBe(`Root=${root};Sampled=0`);
    // A later sampled request is the marker: once its segment is in, the unsampled one would have been too.
    const marker = randomUUID();
    await front.get(`/plain?probe=${marker}`);
    await frontSegment(marker);
    expect(daemon.documents.filter((document) => document.trace_id === root)).toEqual([]);
  });

  it('not sampled by the caller and with a malformed trace id start a trace of their own, still unsampled', async () => {
    const response = await front.get<CallBody>('/call?via=pool', { 'x-amzn-trace-id': 'Root=not-a-trace;Sampled=0' });
    expect(response.status).toBe(200);
    const traceId = response.body.before.trace_id;
    expect(traceId).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(response.body.answers[0]!.body.traceHeader).toBe(`Root=${traceId};Sampled=0`);
  });

  it('keep their own segment as the context across awaits', async () => {
    const response = await front.get<{ before: SegmentRef; after: SegmentRef }>('/context');
    expect(response.body.after).toEqual(response.body.before);
    const [segment] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: response.body.before.trace_id });
    expect(segment!.id).toBe(response.body.before.id);
  });
});

describe('outgoing undici calls', () => {
  // `global`: undici's top-level request() through a traced Agent made the global dispatcher; `fetch`: Node's own fetch
  // through that same dispatcher.
  const described = { pool: 'an undici pool', balanced: 'an undici balanced pool', agent: 'an undici agent', global: 'the global dispatcher', fetch: "Node's fetch" };
  for (const via of ['pool', 'balanced', 'agent', 'global', 'fetch'] as const) {
    it(`through ${described[via]} are a remote subsegment the downstream segment is the child of`, async () => {
      const response = await front.get<CallBody>(`/call?via=${via}`);
      expect(response.status).toBe(200);
      const { before, after, answers } = response.body;
      expect(after).toEqual(before);

      const [frontDoc] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: before.trace_id });
      const [backDoc] = await daemon.waitForSegments(1, { name: 'Back-Service', traceId: before.trace_id });
      const subsegments = daemon.subsegmentsOf(frontDoc!);
      expect(subsegments).toHaveLength(1);
      const sub = subsegments[0]!;
      expect(sub).toMatchObject({
        name: '127.0.0.1',
        namespace: 'remote',
        http: { request: { url: `${back.origin}/echo`, method: 'GET', traced: true }, response: { status: 200 } },
      });
      expect(sub.http?.response?.content_length).toBeGreaterThan(0);
      expect([sub.error, sub.fault, sub.throttle]).toEqual([undefined, undefined, undefined]);
      expect(backDoc!.parent_id).toBe(sub.id);
      expect(answers[0]!.body.traceHeader).toBe(`Root=${before.trace_id};Parent=${sub.id};Sampled=1`);
      expect(answers[0]!.body.segment).toEqual({ id: backDoc!.id, trace_id: before.trace_id });
    });
  }

  it('from a handler with a JSON body (read from socket events) still join the request segment', async () => {
    const payload = { note: 'sent in two parts, the second one later' };
    const text = JSON.stringify(payload);
    // The second half arrives in a socket event of its own, after fastify has started reading the body.
    const body = await new Promise<CallBody & { received: unknown }>((resolve, reject) => {
      const call = httpRequest(`${front.origin}/call`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
        let answer = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(answer) as CallBody & { received: unknown }) : reject(new Error(`${res.statusCode} ${answer}`))));
      });
      call.on('error', reject);
      call.write(text.slice(0, 10));
      setTimeout(() => call.end(text.slice(10)), 100);
    });
    expect(body.received).toEqual(payload);
    expect(body.before).not.toBeNull();
    expect(body.after).toEqual(body.before);
    const [frontDoc] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: body.before.trace_id });
    expect(frontDoc!.http?.request?.method).toBe('POST');
    expect(frontDoc!.subsegments).toHaveLength(1);
    expect(body.answers[0]!.body.traceHeader).toBe(`Root=${body.before.trace_id};Parent=${frontDoc!.subsegments![0]!.id};Sampled=1`);
  });

  it('made one after another are sibling subsegments: the first does not become the context of the second', async () => {
    const response = await front.get<CallBody>('/call?via=agent&times=2');
    const { before, after, answers } = response.body;
    expect(after).toEqual(before);
    const [frontDoc] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: before.trace_id });
    const subs = frontDoc!.subsegments ?? [];
    expect(subs).toHaveLength(2);
    expect(subs.every((sub) => sub.subsegments === undefined)).toBe(true);
    const backs = await daemon.waitForSegments(2, { name: 'Back-Service', traceId: before.trace_id });
    expect(backs.map((doc) => doc.parent_id).sort()).toEqual(subs.map((sub) => sub.id).sort());
    expect(answers.map((answer) => answer.body.traceHeader)).toEqual(subs.map((sub) => `Root=${before.trace_id};Parent=${sub.id};Sampled=1`));
  });

  it('answered 404 or 500 flag the subsegment as an error or a fault', async () => {
    const notFound = await front.get<CallBody>('/call?via=pool&path=/status/404');
    const failed = await front.get<CallBody>('/call?via=pool&path=/status/500');
    expect([notFound.status, failed.status]).toEqual([200, 200]);
    const [notFoundDoc] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: notFound.body.before.trace_id });
    const [failedDoc] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: failed.body.before.trace_id });
    const notFoundSub = notFoundDoc!.subsegments![0]!;
    const failedSub = failedDoc!.subsegments![0]!;
    expect([notFoundSub.http?.response?.status, notFoundSub.error, notFoundSub.fault]).toEqual([404, true, undefined]);
    expect([failedSub.http?.response?.status, failedSub.error, failedSub.fault]).toEqual([500, undefined, true]);
    // Two paths of one origin, each its own URL (the interceptor keeps resolved URLs by origin and path).
    expect([notFoundSub.http?.request?.url, failedSub.http?.request?.url]).toEqual([`${back.origin}/status/404`, `${back.origin}/status/500`]);
  });

  it('are recorded without their query string, which can carry a token', async () => {
    const response = await front.get<CallBody>(`/call?via=pool&path=${encodeURIComponent('/echo?token=query-s3cret')}`);
    expect(response.status).toBe(200);
    const [frontDoc] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId: response.body.before.trace_id });
    const [sub] = daemon.subsegmentsOf(frontDoc!);
    expect(sub!.http?.request?.url).toBe(`${back.origin}/echo`);
    expect(JSON.stringify(sub)).not.toContain('query-s3cret');
  });

  it('that fail to connect are a fault with the error, and the 502 they lead to is the segment fault', async () => {
    const deadOrigin = `http://127.0.0.1:${await closedPort()}`;
    const probe = randomUUID();
    const response = await front.get<{ message: string }>(`/call-refused?origin=${encodeURIComponent(deadOrigin)}&probe=${probe}`);
    expect(response.status).toBe(502);
    const segment = await frontSegment(probe);
    expect(segment.fault).toBe(true);
    expect(segment.cause?.exceptions?.map((e) => e.message)).toEqual(['downstream unavailable: ECONNREFUSED']);
    const sub = segment.subsegments![0]!;
    // Never sent, so no downstream segment will join: not `traced`, or X-Ray would call the trace broken.
    expect(sub).toMatchObject({ name: '127.0.0.1', namespace: 'remote', fault: true, http: { request: { url: `${deadOrigin}/echo`, method: 'GET' } } });
    expect(sub.http?.request).not.toHaveProperty('traced');
    expect(sub.http?.response).toBeUndefined();
    expect(sub.cause?.exceptions?.[0]?.message).toMatch(/ECONNREFUSED/);
  });
});

describe('background work', () => {
  async function backgroundAnswer(task: boolean): Promise<EchoBody> {
    expect((await front.get(`/background?task=${task ? 1 : 0}`)).status).toBe(202);
    let answers: EchoBody[] = [];
    await expect
      .poll(async () => {
        answers = [...answers, ...(await front.get<EchoBody[]>('/background-results')).body];
        return answers.length;
      })
      .toBe(1);
    return answers[0]!;
  }

  it('left running after the response joins no trace, and is logged as a missing context (AWS_XRAY_CONTEXT_MISSING=LOG_ERROR)', async () => {
    const earlier = problems(front.logs).length;
    const answer = await backgroundAnswer(false);
    expect(answer.traceHeader).toBeNull();
    await expect.poll(() => problems(front.logs).slice(earlier).map((line) => [line.level, line.component, line.msg])).toEqual([
      [50, 'xray', 'Failed to get the current sub/segment from the context: GET /echo runs outside any request or traceTask'],
    ]);
  });

  it('run through traceTask is a segment of its own, named after the service, with its calls as subsegments', async () => {
    const answer = await backgroundAnswer(true);
    const traceId = answer.segment!.trace_id;
    const [task] = await daemon.waitForSegments(1, { name: 'Front-Service', traceId });
    expect(task!.annotations).toEqual({ task: 'outbox' });
    expect(task!.http).toBeUndefined();
    const [sub] = task!.subsegments!;
    expect(sub).toMatchObject({ namespace: 'remote', http: { request: { url: `${back.origin}/echo`, traced: true }, response: { status: 200 } } });
    expect(answer.traceHeader).toBe(`Root=${traceId};Parent=${sub!.id};Sampled=1`);
  });
});

describe('under concurrency', () => {
  it('200 concurrent requests each keep their own context, subsegment and downstream child', async () => {
    const before = { front: problems(front.logs).length, back: problems(back.logs).length };
    const responses = await concurrently(200, () => front.get<CallBody>('/call?via=pool'));
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    const traceIds = new Set(responses.map((r) => r.body.before.trace_id));
    expect(traceIds.size).toBe(200);
    for (const { body } of responses) expect(body.after).toEqual(body.before);

    await expect
      .poll(() => responses.every((r) => daemon.segments({ name: 'Back-Service', traceId: r.body.before.trace_id }).length === 1), { timeout: 20_000 })
      .toBe(true);
    await expect
      .poll(() => responses.every((r) => daemon.segments({ name: 'Front-Service', traceId: r.body.before.trace_id }).length === 1), { timeout: 20_000 })
      .toBe(true);
    for (const { body } of responses) {
      const frontDoc = daemon.segments({ name: 'Front-Service', traceId: body.before.trace_id })[0]!;
      const backDoc = daemon.segments({ name: 'Back-Service', traceId: body.before.trace_id })[0]!;
      expect(frontDoc.id).toBe(body.before.id);
      expect(frontDoc.subsegments).toHaveLength(1);
      const sub = frontDoc.subsegments![0]!;
      expect(backDoc.parent_id).toBe(sub.id);
      expect(body.answers[0]!.body.traceHeader).toBe(`Root=${body.before.trace_id};Parent=${sub.id};Sampled=1`);
    }
    expect(problems(front.logs).slice(before.front)).toEqual([]);
    expect(problems(back.logs).slice(before.back)).toEqual([]);
    expect(daemon.malformed).toEqual([]);
  });
});
