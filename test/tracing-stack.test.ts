import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startXrayDaemon, type TestDatabase, type XrayDaemon, type XrayDocument } from '@canary/testkit';
import { startLocalStack, type LocalStack } from '../tools/src/local-stack/index.js';

const traceEverything = fileURLToPath(new URL('../docs/xray-sampling-all.json', import.meta.url));
const usermgmtName = 'User-Management-Microservice';
const versionName = { V1: 'V1-Notification-Microservice', V2: 'V2-Notification-Microservice' } as const;

/** One log line of a stack process, `[name] {json}`. */
interface StackLine {
  process: string;
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface RunningStack {
  stack: LocalStack;
  base: string;
  lines: StackLine[];
}

async function startStack(database: TestDatabase, env: Record<string, string>, counts: { v1: number; v2: number }): Promise<RunningStack> {
  const lines: StackLine[] = [];
  const stack = await startLocalStack({
    ...counts,
    usermgmtPort: 0,
    notificationPort: 0,
    env: { ...database.env, LOG_LEVEL: 'info', ...env },
    healthIntervalMs: 200,
    stopGraceMs: 5000,
    write: (line) => {
      const match = /^\[([^\]]+)\] (\{.*\})$/.exec(line);
      if (!match) return;
      try {
        lines.push({ process: match[1]!, ...(JSON.parse(match[2]!) as { level: number; msg: string }) });
      } catch {
        // A line that is not JSON (the stack's own messages) is not a service log line.
      }
    },
  });
  return { stack, base: `http://${stack.host}:${stack.usermgmtPort}`, lines };
}

/** A trace id of our own, as a caller in front of user management would send it. */
function newTraceId(): string {
  return `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
}

const callerParent = '53995c3f42cd8ad8';

async function get(base: string, path: string, traceId?: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${base}${path}`, traceId ? { headers: { 'x-amzn-trace-id': `Root=${traceId};Parent=${callerParent};Sampled=1` } } : {});
  return { status: response.status, text: await response.text() };
}

describe('X-Ray through the local stack (2 V1 + 2 V2, a UDP daemon)', () => {
  let daemon: XrayDaemon;
  let database: TestDatabase;
  let running: RunningStack;

  beforeAll(async () => {
    daemon = await startXrayDaemon();
    database = await createTestDatabase('tracingstack');
    running = await startStack(database, { AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything }, { v1: 2, v2: 2 });
  });

  afterAll(async () => {
    await running?.stack.close();
    await database?.drop();
    await daemon?.close();
  });

  async function usermgmtSegment(traceId: string): Promise<XrayDocument> {
    const [segment] = await daemon.waitForSegments(1, { name: usermgmtName, traceId });
    expect(daemon.segments({ name: usermgmtName, traceId })).toHaveLength(1);
    return segment!;
  }

  it('/usermgmt/notification-xray: user management segment, remote subsegment, and the answering version as its child', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i += 1) {
      const traceId = newTraceId();
      const response = await get(running.base, '/usermgmt/notification-xray', traceId);
      expect(response.status).toBe(200);
      const { appversion } = JSON.parse(response.text) as { appversion: 'V1' | 'V2' };
      expect(['V1', 'V2']).toContain(appversion);

      const segment = await usermgmtSegment(traceId);
      // The caller's header is continued: its trace, its id as the parent.
      expect(segment.parent_id).toBe(callerParent);
      expect(segment.http?.request?.url).toBe(`${running.base}/usermgmt/notification-xray`);
      expect(segment.http?.response?.status).toBe(200);
      const remote = daemon.subsegmentsOf(segment).filter((sub) => sub.namespace === 'remote' && sub.http);
      expect(remote).toHaveLength(1);
      const sub = remote[0]!;
      expect(sub.http?.request).toEqual({ url: `http://${running.stack.host}:${running.stack.notificationPort}/notification/xray`, method: 'GET', traced: true });
      expect(sub.http?.response?.status).toBe(200);

      const [child] = await daemon.waitForSegments(1, { name: versionName[appversion], traceId });
      expect(child!.parent_id).toBe(sub.id);
      expect(child!.http?.request?.url).toMatch(/\/notification\/xray$/);
      expect(daemon.segments({ traceId }).map((s) => s.name).sort()).toEqual([usermgmtName, versionName[appversion]].sort());
      seen.add(child!.name);
    }
    expect([...seen].sort()).toEqual([versionName.V1, versionName.V2]);
  });

  it('/usermgmt/users: the queries are SQL subsegments without values or password', async () => {
    const user = {
      username: `trace${randomBytes(3).toString('hex')}`,
      email: `trace-${randomBytes(3).toString('hex')}@example.com`,
      role: 'ROLE_ADMIN',
      enabled: true,
      firstname: 'Tracy',
      lastname: 'Segment',
      password: 'Trace@Pass1',
    };
    const created = await fetch(`${running.base}/usermgmt/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) });
    expect(created.status).toBe(200);

    const traceId = newTraceId();
    const response = await get(running.base, '/usermgmt/users', traceId);
    expect(response.status).toBe(200);
    expect((JSON.parse(response.text) as { username: string }[]).map((u) => u.username)).toContain(user.username);
    const segment = await usermgmtSegment(traceId);
    const sql = daemon.subsegmentsOf(segment).filter((sub) => sub.sql);
    expect(sql.length).toBeGreaterThanOrEqual(1);
    for (const sub of sql) {
      expect(sub).toMatchObject({ name: `${database.database}@${database.host}`, namespace: 'remote' });
      expect(sub.sql).toMatchObject({ url: `mysql://${database.host}:${database.port}/${database.database}`, user: database.user, database_type: 'MySQL' });
    }
    // The account e-mail goes out from the outbox, after the create was answered: traced all the same, as a
    // segment of its own (or inside the create's, if still open) whose subsegment is the notification's parent.
    const sendSegment = async () => {
      const send = daemon.segments().find((doc) => doc.name !== usermgmtName && doc.http?.request?.url?.endsWith('/notification/send'));
      return send?.parent_id ? daemon.documents.flatMap((doc) => [doc, ...daemon.subsegmentsOf(doc)]).find((doc) => doc.id === send.parent_id) : undefined;
    };
    await expect.poll(sendSegment, { timeout: 15_000 }).toBeDefined();
    const parent = (await sendSegment())!;
    expect(parent).toMatchObject({ namespace: 'remote', http: { request: { method: 'POST', traced: true }, response: { status: 200 } } });
    expect(parent.http?.request?.url).toMatch(/\/notification\/send$/);

    const sent = JSON.stringify(daemon.documents);
    expect(sent).not.toContain(user.password);
    expect(sent).not.toContain(user.email);
  });

  it('flags a 404 as an error', async () => {
    const traceId = newTraceId();
    expect((await get(running.base, '/usermgmt/no-such-route', traceId)).status).toBe(404);
    const segment = await usermgmtSegment(traceId);
    expect([segment.error, segment.fault]).toEqual([true, undefined]);
    expect(segment.http?.response?.status).toBe(404);
  });

  it('flags a 5xx as a fault: with no notification replica left, the call fails and the 502 says so', async () => {
    await running.stack.scale({ v1: 0, v2: 0 });
    const traceId = newTraceId();
    const response = await get(running.base, '/usermgmt/notification-xray', traceId);
    expect(response.status).toBeGreaterThanOrEqual(500);
    const segment = await usermgmtSegment(traceId);
    expect(segment.fault).toBe(true);
    expect(segment.http?.response?.status).toBe(response.status);
    const [sub] = daemon.subsegmentsOf(segment).filter((s) => s.namespace === 'remote' && s.http);
    expect(sub!.fault).toBe(true);
    expect(sub!.cause?.exceptions?.length).toBeGreaterThanOrEqual(1);
  });

  it('sends nothing malformed, and no process logs a missing context', () => {
    expect(daemon.malformed).toEqual([]);
    expect(running.lines.filter((line) => /sub\/segment/.test(line.msg))).toEqual([]);
  });
});

describe('X-Ray through the local stack with a daemon address that does not resolve', () => {
  let database: TestDatabase;
  let running: RunningStack;

  beforeAll(async () => {
    database = await createTestDatabase('tracingnowhere');
    running = await startStack(
      database,
      { AWS_XRAY_DAEMON_ADDRESS: 'does-not-exist.invalid:2000', XRAY_SAMPLING_RULES_FILE: traceEverything },
      { v1: 1, v2: 1 },
    );
  });

  afterAll(async () => {
    await running?.stack.close();
    await database?.drop();
  });

  it('still answers every call, and each process logs the DNS failure once', async () => {
    for (let i = 0; i < 10; i += 1) {
      expect((await get(running.base, '/usermgmt/notification-xray')).status).toBe(200);
      expect((await get(running.base, '/usermgmt/users')).status).toBe(200);
    }
    const dnsLines = running.lines.filter((line) => /does not resolve/.test(line.msg));
    expect(dnsLines.map((line) => line.process).sort()).toEqual(running.stack.replicas().map((r) => r.name).concat('user-management').sort());
  });
});
