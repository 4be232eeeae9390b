// Container smoke test (`npm run test:containers`): builds the images, starts docker-compose.yml under a
// project name of its own, checks the demo end to end, then `down -v` and checks that nothing is left.
// Environment: COMPOSE (compose command, default `docker compose`, else `docker-compose`), SMOKE_PROJECT
// (project name), SMOKE_KEEP=1 (leave the stack running for a look; remove it later with `down -v`).
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComposeProject, detectCompose, docker, tail, type ProjectContainer } from './compose.js';
import { call, parseJson, waitFor } from './http.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const composeFile = join(root, 'docker-compose.yml');

/** The segment names the collector must show, one per service and version. */
const segmentNames = ['User-Management-Microservice', 'V1-Notification-Microservice', 'V2-Notification-Microservice'];
const splitCalls = 200;
/**
 * Allowed distance of the V2 share from the replica ratio. With 200 calls and independent random picks the
 * share's standard deviation is at most 3.5 points, so 15 points is over 4 deviations: a pass is not luck,
 * and a 50% stack cannot pass as 75%.
 */
const splitTolerance = 0.15;
const healthTimeoutMs = 300_000;

interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

const results: CheckResult[] = [];
const timings: Array<[string, number]> = [];

function record(name: string, ok: boolean, detail: string): boolean {
  results.push({ name, ok, detail });
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'}  ${name}${detail ? `: ${detail}` : ''}\n`);
  return ok;
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings.push([label, Date.now() - started]);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function expectedContainers(v1: number, v2: number): number {
  // mysql, user-management, the balancer, mailpit, the collector and jaeger, plus the notification replicas.
  return 6 + v1 + v2;
}

/** Waits until the project has `count` containers, all running and none still starting its healthcheck. */
async function waitHealthy(project: ComposeProject, count: number): Promise<ProjectContainer[]> {
  let last: ProjectContainer[] = [];
  const ready = await waitFor(
    async () => {
      last = await project.containers();
      const broken = last.find((c) => !c.status.startsWith('Up') || c.status.includes('(unhealthy)'));
      if (broken && !broken.status.startsWith('Created')) {
        throw new Error(`${broken.service} is ${broken.status}`);
      }
      const settled = last.length === count && last.every((c) => c.status.startsWith('Up') && !c.status.includes('health: starting'));
      return settled ? last : undefined;
    },
    healthTimeoutMs,
    2000,
  );
  if (!ready) {
    const states = last.map((c) => `${c.service}: ${c.status}`).join('; ');
    throw new Error(`not all ${count} containers healthy within ${healthTimeoutMs / 1000} s (${last.length} found: ${states})`);
  }
  return ready;
}

async function checkHealthRoutes(base: string): Promise<void> {
  const routes: Array<[string, string | undefined]> = [
    ['/usermgmt/health/live', undefined],
    ['/usermgmt/health/ready', undefined],
    ['/usermgmt/health-status', 'User Management Service UP and RUNNING'],
    ['/usermgmt/notification-health-status', 'Notification Service is UP and Running'],
  ];
  const problems: string[] = [];
  for (const [path, text] of routes) {
    const answer = await call(`${base}${path}`);
    if (answer.status !== 200) problems.push(`${path} answered ${answer.status} ${answer.body.slice(0, 200)}`);
    else if (text && !answer.body.includes(text)) problems.push(`${path} body lacks "${text}": ${answer.body.slice(0, 200)}`);
  }
  record('health routes through user management', problems.length === 0, problems.join('; ') || routes.map(([path]) => path).join(', '));
}

async function findMail(mailApi: string, email: string): Promise<Record<string, unknown> | undefined> {
  const answer = await call(`${mailApi}/api/v1/messages`);
  const list = parseJson(answer.body) as { messages?: Array<Record<string, unknown>> } | undefined;
  return list?.messages?.find((message) =>
    (message.To as Array<{ Address?: string }> | undefined)?.some((to) => to.Address?.toLowerCase() === email.toLowerCase()),
  );
}

async function checkUserLifecycle(base: string, mailApi: string): Promise<void> {
  const username = `smoke${Date.now().toString(36).slice(-8)}`;
  const email = `${username}@example.com`;
  const user = { username, email, role: 'ROLE_ADMIN', enabled: true, firstname: 'Smoke', lastname: 'Test', password: 'Pass@123' };
  const json = { 'content-type': 'application/json' };

  const created = await call(`${base}/usermgmt/user`, { method: 'POST', headers: json, body: JSON.stringify(user) });
  if (!record('user created', created.status === 200, `POST /usermgmt/user answered ${created.status} ${created.body.slice(0, 200)}`)) return;

  const listed = await call(`${base}/usermgmt/users`);
  const users = parseJson(listed.body);
  const found = Array.isArray(users) && users.some((u: { username?: unknown; email?: unknown }) => u.username === username && u.email === email);
  record('user listed', listed.status === 200 && found, `GET /usermgmt/users answered ${listed.status}${found ? ` with ${username}` : `, ${username} missing`}`);

  // Before the delete: the account e-mail may be sent after the create answered (the service queues it).
  const mail = await waitFor(() => findMail(mailApi, email), 60_000);
  const subjectOk = mail?.Subject === 'Stack Simplify account creation.';
  const snippetOk = typeof mail?.Snippet === 'string' && mail.Snippet.includes('Hello Smoke');
  record(
    'account e-mail reached Mailpit',
    subjectOk && snippetOk,
    mail ? `to ${email}, subject "${String(mail.Subject)}", text "${String(mail.Snippet).slice(0, 80)}"` : `no message to ${email} within 60 s`,
  );

  const deleted = await call(`${base}/usermgmt/user/${username}`, { method: 'DELETE' });
  const after = await call(`${base}/usermgmt/user/${username}`);
  record('user deleted', deleted.status === 200 && after.status === 404, `DELETE answered ${deleted.status}, then GET answered ${after.status}`);
}

/** Calls the info route until `replicas` different notification instances answered: the client has reached them all. */
async function waitForInstances(base: string, replicas: number): Promise<number> {
  const seen = new Set<string>();
  await waitFor(
    async () => {
      const answer = await call(`${base}/usermgmt/notification-service-info`);
      if (answer.status === 200) seen.add(answer.body.trim());
      return seen.size >= replicas ? true : undefined;
    },
    60_000,
    100,
  );
  return seen.size;
}

async function checkSplit(base: string, v1: number, v2: number): Promise<void> {
  const name = `V1/V2 split with ${v1} V1 + ${v2} V2 replicas`;
  const instances = await waitForInstances(base, v1 + v2);
  const counts = new Map<string, number>();
  const failures = new Map<string, number>();
  for (let i = 0; i < splitCalls; i++) {
    const answer = await call(`${base}/usermgmt/notification-xray`);
    const version = (parseJson(answer.body) as { appversion?: unknown } | undefined)?.appversion;
    if (answer.status === 200 && typeof version === 'string') counts.set(version, (counts.get(version) ?? 0) + 1);
    else failures.set(`${answer.status} ${answer.body.slice(0, 120)}`, (failures.get(`${answer.status} ${answer.body.slice(0, 120)}`) ?? 0) + 1);
  }
  const n1 = counts.get('V1') ?? 0;
  const n2 = counts.get('V2') ?? 0;
  const expected = v2 / (v1 + v2);
  const share = n2 / Math.max(1, n1 + n2);
  const ok = failures.size === 0 && (v1 === 0 || n1 > 0) && (v2 === 0 || n2 > 0) && Math.abs(share - expected) <= splitTolerance;
  const failed = [...failures].map(([reason, count]) => `${count}× ${reason}`).join('; ');
  record(
    name,
    ok,
    `${splitCalls} calls: V1 ${n1}, V2 ${n2}, V2 share ${(share * 100).toFixed(1)}% ` +
      `(expected ${(expected * 100).toFixed(0)}% ± ${splitTolerance * 100} points; ${instances} instances reached first)` +
      (failed ? `; failed calls: ${failed}` : ''),
  );
}

async function checkCollector(project: ComposeProject): Promise<void> {
  let missing = segmentNames;
  await waitFor(
    async () => {
      const collector = (await project.containers()).find((c) => c.service === 'otel-collector');
      if (!collector) return undefined;
      const logs = await docker(['logs', collector.id], project.env);
      const text = `${logs.stdout}\n${logs.stderr}`;
      missing = segmentNames.filter((segment) => !text.includes(segment));
      return missing.length === 0 ? true : undefined;
    },
    60_000,
    2000,
  );
  record('collector logged segments of all three services', missing.length === 0, missing.length ? `missing: ${missing.join(', ')}` : segmentNames.join(', '));
}

async function checkUis(mailApi: string, jaegerUi: string): Promise<void> {
  const mailUi = await call(`${mailApi}/`);
  const jaeger = await call(`${jaegerUi}/`);
  record('Mailpit and Jaeger UIs answer', mailUi.status === 200 && jaeger.status === 200, `Mailpit ${mailUi.status}, Jaeger ${jaeger.status}`);
  // Only a real Jaeger has the query API; the offline stand-in answers anything with an empty object.
  const services = parseJson((await call(`${jaegerUi}/api/services`)).body) as { data?: unknown } | undefined;
  if (Array.isArray(services?.data)) {
    const names = services.data.filter((s): s is string => typeof s === 'string');
    const missing = segmentNames.filter((segment) => !names.includes(segment));
    record('Jaeger lists the three services', missing.length === 0, missing.length ? `missing: ${missing.join(', ')}` : names.join(', '));
  } else {
    process.stdout.write('note  Jaeger query API absent (offline stand-in image): trace contents checked in the collector log only\n');
  }
}

/** The services built from our Dockerfile that the checks below look into: one container of each. */
const ourServices = ['user-management', 'notification-v1', 'notification-v2', 'notification-clusterip-service'];

async function ourContainers(project: ComposeProject): Promise<ProjectContainer[]> {
  const containers = await project.containers();
  return ourServices
    .map((service) => containers.find((c) => c.service === service))
    .filter((c): c is ProjectContainer => c !== undefined);
}

/**
 * Our images run node on jemalloc (docker/Dockerfile): the library mapped into PID 1, and its background thread
 * running, which only MALLOC_CONF's `background_thread:true` starts, so the setting reached the allocator too.
 */
async function checkAllocator(project: ComposeProject): Promise<void> {
  const picked = await ourContainers(project);
  const problems: string[] = [];
  for (const container of picked) {
    const { stdout } = await docker(['exec', container.id, 'sh', '-c', 'grep -c /libjemalloc.so.2 /proc/1/maps; cat /proc/1/task/*/comm'], project.env);
    const [mapped, ...threads] = stdout.trim().split('\n');
    if (!(Number(mapped) > 0)) problems.push(`${container.service}: libjemalloc.so.2 not mapped`);
    else if (!threads.includes('jemalloc_bg_thd')) problems.push(`${container.service}: no jemalloc background thread (MALLOC_CONF not applied)`);
  }
  record('our containers run node on jemalloc', picked.length === ourServices.length && problems.length === 0, problems.join('; ') || picked.map((c) => c.service).join(', '));
}

/**
 * SIGTERM must end our services by themselves: exit code 0 means they stopped on the signal; 137 would mean
 * Docker had to kill them after its 10 s timeout. The stop durations are reported as figures.
 */
async function checkStop(project: ComposeProject): Promise<void> {
  const picked = await ourContainers(project);
  const outcomes = await Promise.all(
    picked.map(async (container) => {
      const started = Date.now();
      await docker(['stop', '-t', '10', container.id], project.env, 60_000);
      const ms = Date.now() - started;
      const code = (await docker(['inspect', '-f', '{{.State.ExitCode}}', container.id], project.env)).stdout.trim();
      return { service: container.service, ms, code };
    }),
  );
  const ok = picked.length === ourServices.length && outcomes.every((o) => o.code === '0');
  record('SIGTERM stops our containers', ok, outcomes.map((o) => `${o.service} exit ${o.code} in ${(o.ms / 1000).toFixed(1)} s`).join(', '));
}

async function main(): Promise<number> {
  const compose = await detectCompose();
  const [usermgmtPort, notificationPort, mailPort, jaegerPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const project = process.env.SMOKE_PROJECT ?? `canary-smoke-${Date.now().toString(36)}`;
  const logFile = join(tmpdir(), `${project}.log`);
  writeFileSync(logFile, '');
  // Everything the checks rely on is set here, so a developer's .env (SES, other ports) cannot leak in.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PUBLISH_ADDRESS: '127.0.0.1',
    USERMGMT_HOST_PORT: String(usermgmtPort),
    NOTIFICATION_HOST_PORT: String(notificationPort),
    MAILPIT_UI_HOST_PORT: String(mailPort),
    JAEGER_UI_HOST_PORT: String(jaegerPort),
    NOTIFICATION_V1_REPLICAS: '2',
    NOTIFICATION_V2_REPLICAS: '2',
    NOTIFICATION_CONNECTION_POLICY: 'instance-balanced',
    AWS_MAIL_SERVER_HOST: 'mailpit',
    AWS_MAIL_SERVER_PORT: '1025',
    AWS_MAIL_SERVER_USERNAME: '',
    AWS_MAIL_SERVER_PASSWORD: '',
    LOG_LEVEL: 'info',
  };
  const stack = new ComposeProject(compose, project, composeFile, env, logFile);
  const base = `http://127.0.0.1:${usermgmtPort}`;
  const mailApi = `http://127.0.0.1:${mailPort}`;
  process.stdout.write(`compose: ${compose.join(' ')}; project ${project}; user management ${base}; command log ${logFile}\n`);

  const keep = process.env.SMOKE_KEEP === '1';
  try {
    await timed('build images', () => stack.run(['build']));
    await timed('start stack', () => stack.run(['up', '-d']));
    await timed('wait until healthy', () => waitHealthy(stack, expectedContainers(2, 2)));
    record('stack healthy', true, `${expectedContainers(2, 2)} containers up`);

    await timed('checks', async () => {
      await checkHealthRoutes(base);
      await checkUserLifecycle(base, mailApi);
      await checkSplit(base, 2, 2);
      await checkCollector(stack);
      await checkUis(mailApi, `http://127.0.0.1:${jaegerPort}`);
      await checkAllocator(stack);
    });
    await timed('scale to 1 V1 + 3 V2 and check', async () => {
      await stack.run(['up', '-d', '--scale', 'notification-v1=1', '--scale', 'notification-v2=3']);
      await waitHealthy(stack, expectedContainers(1, 3));
      await checkSplit(base, 1, 3);
    });
    await timed('stop our containers', () => checkStop(stack));
  } catch (err) {
    record('stack', false, (err as Error).message);
  }

  if (results.some((r) => !r.ok)) {
    const logs = await stack.run(['logs', '--no-color', '--tail', '25']).catch((err: Error) => ({ stdout: err.message }));
    process.stdout.write(`\n--- last lines of each container ---\n${tail(logs.stdout, 400)}\n`);
  }

  if (keep) {
    process.stdout.write(`SMOKE_KEEP=1: stack left running; remove it with: ${compose.join(' ')} -p ${project} -f ${composeFile} down -v\n`);
  } else {
    try {
      await timed('down -v', () => stack.run(['down', '-v', '--remove-orphans']));
      const left = await stack.leftovers();
      record('down -v left nothing of the project', left.length === 0, left.length ? left.join(', ') : 'no container, network or volume');
    } catch (err) {
      record('down -v', false, (err as Error).message);
    }
  }

  const failed = results.filter((r) => !r.ok);
  process.stdout.write(`\ntimings: ${timings.map(([label, ms]) => `${label} ${(ms / 1000).toFixed(1)} s`).join(', ')}\n`);
  process.stdout.write(failed.length ? `FAILED: ${failed.map((r) => r.name).join('; ')}\n` : `all ${results.length} checks passed\n`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`containers smoke test: ${err.message}\n`);
    process.exit(2);
  },
);
