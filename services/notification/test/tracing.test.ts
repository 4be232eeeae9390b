import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startXrayDaemon, type XrayDaemon } from '@canary/testkit';

const serverEntry = fileURLToPath(new URL('../dist/bundle.js', import.meta.url));
const traceEverything = fileURLToPath(new URL('../../../docs/xray-sampling-all.json', import.meta.url));

interface Server {
  child: ChildProcess;
  port: Promise<number>;
  exited: Promise<{ code: number | null; stderr: string }>;
}

const servers: Server[] = [];

function startServer(env: Record<string, string>): Server {
  const child = spawn(process.execPath, [serverEntry], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', AWS_MAIL_SERVER_HOST: '127.0.0.1', ...env },
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
  const server = { child, port, exited };
  servers.push(server);
  return server;
}

let daemon: XrayDaemon;
beforeAll(async () => {
  daemon = await startXrayDaemon();
});
afterEach(async () => {
  for (const { child, exited } of servers.splice(0)) {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
});
afterAll(async () => {
  await daemon.close();
});

describe('the notification server traces its requests', () => {
  it.each(['V1', 'V2'] as const)('named %s-Notification-Microservice by default', async (version) => {
    const server = startServer({ APP_VERSION: version, AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything });
    const base = `http://127.0.0.1:${await server.port}`;
    const traceId = `1-${Math.floor(Date.now() / 1000).toString(16)}-${'ab'.repeat(11)}${version === 'V1' ? '01' : '02'}`;
    const response = await fetch(`${base}/notification/xray`, { headers: { 'x-amzn-trace-id': `Root=${traceId};Parent=0123456789abcdef;Sampled=1` } });
    expect(((await response.json()) as { appversion: string }).appversion).toBe(version);
    const [segment] = await daemon.waitForSegments(1, { traceId });
    expect(segment).toMatchObject({
      name: `${version}-Notification-Microservice`,
      parent_id: '0123456789abcdef',
      http: { request: { method: 'GET', url: `${base}/notification/xray` }, response: { status: 200 } },
    });
  });

  it('named by AWS_XRAY_TRACING_NAME when it is set', async () => {
    const server = startServer({ APP_VERSION: 'V2', AWS_XRAY_TRACING_NAME: 'Canary-Notification', AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything });
    const base = `http://127.0.0.1:${await server.port}`;
    await fetch(`${base}/notification/info`);
    await daemon.waitForSegments(1, { name: 'Canary-Notification' });
  });

  it('not at all with AWS_XRAY_SDK_ENABLED=false', async () => {
    const server = startServer({ APP_VERSION: 'V1', AWS_XRAY_SDK_ENABLED: 'false', AWS_XRAY_TRACING_NAME: 'Off-Notification', AWS_XRAY_DAEMON_ADDRESS: daemon.address });
    const base = `http://127.0.0.1:${await server.port}`;
    expect((await fetch(`${base}/notification/xray`)).status).toBe(200);
    // A traced server's segment is the marker: the untraced one's would have come first.
    const marker = startServer({ APP_VERSION: 'V1', AWS_XRAY_TRACING_NAME: 'Marker-Notification', AWS_XRAY_DAEMON_ADDRESS: daemon.address, XRAY_SAMPLING_RULES_FILE: traceEverything });
    await fetch(`http://127.0.0.1:${await marker.port}/notification/xray`);
    await daemon.waitForSegments(1, { name: 'Marker-Notification' });
    expect(daemon.segments({ name: 'Off-Notification' })).toEqual([]);
  });

  it('and refuses to start with a broken XRAY_SAMPLING_RULES_FILE, naming it', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'notification-rules-')), 'rules.json');
    await writeFile(file, '{"version":2}');
    const { code, stderr } = await startServer({ XRAY_SAMPLING_RULES_FILE: file }).exited;
    expect(code).toBe(1);
    expect(stderr).toBe(`Invalid environment: XRAY_SAMPLING_RULES_FILE is not an X-Ray sampling-rules file (/default Expected required property): ${file}\n`);
  });
});
