import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startXrayDaemon, type TestDatabase, type XrayDaemon } from '@canary/testkit';

const serverEntry = fileURLToPath(new URL('../dist/bundle.js', import.meta.url));
const traceEverything = fileURLToPath(new URL('../../../docs/xray-sampling-all.json', import.meta.url));

interface Server {
  child: ChildProcess;
  port: Promise<number>;
  exited: Promise<{ code: number | null; stderr: string }>;
}

function startServer(env: Record<string, string>): Server {
  const child = spawn(process.execPath, [serverEntry], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr }));
  const port = new Promise<number>((resolve, reject) => {
    child.on('message', (message: { port: number }) => resolve(message.port));
    void exited.then(({ code }) => reject(new Error(`exited with ${code}: ${stderr}`)));
  });
  // A server expected to fail is awaited through `exited`: its port is never asked for.
  port.catch(() => undefined);
  return { child, port, exited };
}

let daemon: XrayDaemon;
let database: TestDatabase;
let server: Server;
let base: string;

beforeAll(async () => {
  daemon = await startXrayDaemon();
  database = await createTestDatabase('umtracing');
  // The notification service is never called here: its address only has to be valid.
  server = startServer({ ...database.env, AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything });
  base = `http://127.0.0.1:${await server.port}`;
});

afterAll(async () => {
  if (server?.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  await database?.drop();
  await daemon?.close();
});

describe('the user management server traces its requests', () => {
  it('as User-Management-Microservice, with its queries as SQL subsegments; the start-up migrations are not traced', async () => {
    const traceId = `1-${Math.floor(Date.now() / 1000).toString(16)}-${'cd'.repeat(12)}`;
    const response = await fetch(`${base}/usermgmt/users`, { headers: { 'x-amzn-trace-id': `Root=${traceId};Parent=0123456789abcdef;Sampled=1` } });
    expect(response.status).toBe(200);
    const [segment] = await daemon.waitForSegments(1, { traceId });
    expect(segment).toMatchObject({ name: 'User-Management-Microservice', parent_id: '0123456789abcdef', http: { response: { status: 200 } } });
    const sql = daemon.subsegmentsOf(segment!);
    expect(sql.length).toBeGreaterThanOrEqual(1);
    for (const sub of sql) {
      expect(sub).toMatchObject({
        name: `${database.database}@${database.host}`,
        namespace: 'remote',
        sql: { url: `mysql://${database.host}:${database.port}/${database.database}`, user: database.user, database_type: 'MySQL' },
      });
    }
    // Migrations and the wait for the database ran before any request: no document but this request's.
    expect(daemon.documents.map((doc) => doc.trace_id)).toEqual([traceId]);
  });

  it('refuses to start with a broken XRAY_SAMPLING_RULES_FILE, naming it', async () => {
    const { code, stderr } = await startServer({ XRAY_SAMPLING_RULES_FILE: '/nonexistent/rules.json' }).exited;
    expect(code).toBe(1);
    expect(stderr).toBe('user-management: Invalid environment: XRAY_SAMPLING_RULES_FILE cannot be read (ENOENT): /nonexistent/rules.json\n');
  });
});
