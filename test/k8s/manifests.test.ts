import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { findKustomizations, k8sRoot, objectsOf, renderAll, repoRoot, requireKubectl, type RenderResult } from './support/kustomize.js';
import { containerEnv, containersOf, ofKind, podLabels, selects, workloads, type K8sObject } from './support/objects.js';
import { unknownFieldErrors, validateAgainstSchema } from './support/schemas.js';

const kustomizations = await findKustomizations();
let rendered: Map<string, RenderResult>;

beforeAll(async () => {
  await requireKubectl();
  rendered = await renderAll(kustomizations);
}, 120_000);

const renderedDirs = () => kustomizations.filter(({ dir }) => !('error' in rendered.get(dir)!));
/** Everything rendered except the Secrets (k8s/secrets, rendered from its examples). */
const deployableDirs = () => renderedDirs().filter(({ dir }) => dir !== 'secrets');
/** What `kubectl apply -k` is meant for: not the pieces under k8s/base/ that only k8s/base assembles. */
const completeDirs = () => deployableDirs().filter(({ dir }) => !dir.startsWith('base/'));

function allObjects(dirs = renderedDirs()): { dir: string; object: K8sObject }[] {
  return dirs.flatMap(({ dir }) => objectsOf(rendered, dir).map((object) => ({ dir, object })));
}

const id = (object: K8sObject) => `${object.kind}/${object.metadata.name}`;

describe('kustomizations under k8s/', () => {
  it('are the base, the secrets, one overlay per row of the course table and the weighted steps', () => {
    const dirs = kustomizations.map(({ dir }) => dir);
    expect(dirs).toEqual(expect.arrayContaining(['base', 'secrets', 'weighted/istio/mesh', 'weighted/gateway-api/mesh']));
    expect(dirs.filter((dir) => dir.startsWith('overlays/')).sort()).toEqual(
      ['overlays/canary-0', 'overlays/canary-100', 'overlays/canary-25', 'overlays/canary-50', 'overlays/canary-75'],
    );
    const steps = (variant: string) => dirs.filter((dir) => dir.startsWith(`weighted/${variant}/canary-`)).map((dir) => dir.split('/').pop());
    expect(steps('istio').length).toBeGreaterThanOrEqual(5);
    expect(steps('gateway-api')).toEqual(steps('istio'));
  });

  it('fail with a message saying what to install when kubectl is missing', async () => {
    await expect(requireKubectl({ PATH: '/nonexistent' })).rejects.toThrow(
      /^kubectl is not on PATH\. The manifest tests render every kustomization .* install kubectl 1\.27 or later/,
    );
    await expect(requireKubectl()).resolves.toMatch(/^kubectl v\d+\.\d+.*, kustomize v\d+/);

    // Debian 12's own kubectl (kubernetes-client 1.20) reports kustomize v2, which cannot render k8s/.
    const bin = await mkdtemp(join(tmpdir(), 'old-kubectl-'));
    try {
      const report = JSON.stringify({ clientVersion: { gitVersion: 'v1.20.2' }, kustomizeVersion: 'v2.0.3' });
      await writeFile(join(bin, 'kubectl'), `#!/bin/sh\necho '${report}'\n`, { mode: 0o755 });
      await expect(requireKubectl({ PATH: bin })).rejects.toThrow(/^kubectl v1\.20\.2, kustomize v2\.0\.3 is too old to render k8s\//);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it.each(kustomizations.map(({ dir }) => dir))('k8s/%s renders with kubectl kustomize', (dir) => {
    const result = rendered.get(dir)!;
    if ('error' in result) throw result.error;
    expect(result.objects.length).toBeGreaterThan(0);
  });

  it('have a README in every folder that groups them', async () => {
    for (const folder of ['', 'base', 'secrets', 'overlays', 'weighted', 'weighted/istio', 'weighted/gateway-api']) {
      const text = await readFile(join(k8sRoot, folder, 'README.md'), 'utf8');
      expect(text.length, `k8s/${folder}/README.md is empty`).toBeGreaterThan(100);
    }
  });
});

describe('schemas', () => {
  it.each(kustomizations.map(({ dir }) => dir))('every object of k8s/%s fits its Kubernetes, Istio or Gateway API schema', async (dir) => {
    const failures: string[] = [];
    for (const object of objectsOf(rendered, dir)) {
      try {
        await validateAgainstSchema(object);
      } catch (err) {
        failures.push(`${id(object)}: ${(err as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('no object carries a field its schema does not know', () => {
    const unique = new Map<string, { label: string; object: K8sObject }>();
    for (const { dir, object } of allObjects()) {
      const key = JSON.stringify(object);
      if (!unique.has(key)) unique.set(key, { label: `k8s/${dir} ${id(object)}`, object });
    }
    expect(unknownFieldErrors([...unique.values()])).toEqual([]);
  });

  it('the unknown-field check names a misspelt field, and the schema check a wrong type, in every package', async () => {
    const deployment = structuredClone(objectsOf(rendered, 'base').find((object) => object.kind === 'Deployment')!);
    const container = (deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec.containers[0]!;
    container.readinessProbe = { httpGet: { path: '/', port: 80 }, initialDelaySecond: 1 };
    const [error, ...rest] = unknownFieldErrors([{ label: 'test', object: deployment }]);
    expect(rest).toEqual([]);
    expect(error).toMatch(/^test: "initialDelaySecond": 1 -> .*initialDelaySecond.* does not exist in type 'IProbe'/);

    const route = structuredClone(objectsOf(rendered, 'weighted/gateway-api/mesh').find((object) => object.kind === 'HTTPRoute')!);
    (route.spec as { rules: { backendRefs: { weight: number }[] }[] }).rules[0]!.backendRefs[0]!.weight = -1;
    await expect(validateAgainstSchema(route)).rejects.toThrow(/weight must be >= 0/);

    const virtualService = structuredClone(objectsOf(rendered, 'weighted/istio/mesh').find((object) => object.kind === 'VirtualService')!);
    (virtualService.spec as { http: { route: { weight: unknown }[] }[] }).http[0]!.route[0]!.weight = '100';
    await expect(validateAgainstSchema(virtualService)).rejects.toThrow(/weight must be integer/);
  });
});

describe('secrets', () => {
  it('no committed manifest holds Secret data', async () => {
    const files: string[] = [];
    async function walk(dir: string): Promise<void> {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) await walk(join(dir, entry.name));
        else if (/\.ya?ml$/.test(entry.name)) files.push(join(dir, entry.name));
      }
    }
    await walk(k8sRoot);
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
        const object = doc.toJS() as Record<string, unknown> | null;
        if (object?.kind !== 'Secret') continue;
        expect(object.data, `${file} has Secret data`).toBeUndefined();
        expect(object.stringData, `${file} has Secret stringData`).toBeUndefined();
      }
    }
  });

  it('only k8s/secrets makes Secrets, from git-ignored files whose committed examples hold placeholders', async () => {
    for (const { dir, object } of allObjects()) {
      if (object.kind === 'Secret') expect(dir, `${id(object)} rendered by k8s/${dir}`).toBe('secrets');
    }
    const secrets = ofKind(objectsOf(rendered, 'secrets'), 'Secret');
    expect(secrets.map((secret) => secret.metadata.name).sort()).toEqual(['mysql-db-password', 'smtp-credentials']);
    for (const secret of secrets) {
      for (const [key, value] of Object.entries(secret.data as Record<string, string>)) {
        expect(Buffer.from(value, 'base64').toString(), `${secret.metadata.name}.${key}`).toBe('CHANGE-ME');
      }
    }
    const run = promisify(execFile);
    for (const file of ['db.env', 'smtp.env']) {
      // Exit status 0: git ignores the file; 1 would mean a real credential file could be committed.
      await run('git', ['check-ignore', '--quiet', `k8s/secrets/${file}`], { cwd: repoRoot });
      await run('git', ['ls-files', '--error-unmatch', `k8s/secrets/${file}.example`], { cwd: repoRoot });
    }
  });

  it('credentials reach containers only through secretKeyRef, never a value or a ConfigMap', () => {
    const credential = /PASSWORD|SECRET|TOKEN|^AWS_MAIL_SERVER_USERNAME$/;
    let checked = 0;
    for (const { dir, object } of allObjects(deployableDirs())) {
      if (object.kind === 'ConfigMap') {
        for (const key of Object.keys((object.data ?? {}) as object)) expect(key, `k8s/${dir} ${id(object)}`).not.toMatch(credential);
      }
    }
    for (const { dir } of deployableDirs()) {
      const objects = objectsOf(rendered, dir);
      if (!objects.some((object) => object.kind === 'ConfigMap')) continue;
      for (const { object, template } of workloads(objects)) {
        for (const container of containersOf(template)) {
          for (const [name, source] of containerEnv(container, objects)) {
            if (!credential.test(name)) continue;
            checked++;
            expect(source.from, `k8s/${dir} ${id(object)} ${name}`).toBe('secret');
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

describe('images', () => {
  const baseImages = () =>
    (kustomizations.find(({ dir }) => dir === 'base')!.spec.images as { name: string; newName: string; newTag: string }[]).map(
      (image) => `${image.newName}:${image.newTag}`,
    );

  it('are set in one place: the images list of k8s/base, with a tag on each', () => {
    for (const { dir, spec } of kustomizations) if (dir !== 'base') expect(spec.images, `k8s/${dir} sets images`).toBeUndefined();
    for (const image of baseImages()) expect(image).toMatch(/^[^:]+:[\w.-]+$/);
  });

  it('every container of every kustomization runs an image from that list', () => {
    const allowed = new Set(baseImages());
    const used = new Set<string>();
    for (const { dir, object } of allObjects(completeDirs())) {
      for (const { template } of workloads([object])) {
        for (const container of containersOf(template)) {
          expect(allowed.has(container.image ?? ''), `k8s/${dir} ${id(object)} runs ${container.image}`).toBe(true);
          used.add(container.image ?? '');
        }
      }
    }
    expect([...used].sort()).toEqual([...allowed].sort());
  });
});

describe('pods', () => {
  const baseWorkloads = () => workloads(objectsOf(rendered, 'base'));

  it('run as non-root, read-only, without privilege escalation or capabilities, with the runtime seccomp profile', () => {
    expect(baseWorkloads().length).toBe(4);
    for (const { object, template } of baseWorkloads()) {
      const pod = template.spec!;
      expect(pod.securityContext?.runAsNonRoot, id(object)).toBe(true);
      expect(pod.securityContext?.runAsUser, id(object)).toBeGreaterThan(0);
      expect(pod.securityContext?.seccompProfile?.type, id(object)).toBe('RuntimeDefault');
      for (const container of containersOf(template)) {
        const context = container.securityContext;
        expect(context?.readOnlyRootFilesystem, `${id(object)} ${container.name}`).toBe(true);
        expect(context?.allowPrivilegeEscalation, `${id(object)} ${container.name}`).toBe(false);
        expect(context?.capabilities?.drop, `${id(object)} ${container.name}`).toEqual(['ALL']);
        expect(context?.capabilities?.add, `${id(object)} ${container.name}`).toBeUndefined();
        expect(context?.privileged ?? false, `${id(object)} ${container.name}`).toBe(false);
      }
    }
  });

  it('have requests and limits for CPU and memory, limits above requests', () => {
    const quantity = (value: string | number | undefined) => {
      const text = String(value);
      const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(text);
      if (!match) throw new Error(`unexpected quantity ${text}`);
      const factor = { m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[match[2] as 'm' | 'Ki' | 'Mi' | 'Gi'] ?? 1;
      return Number(match[1]) * factor;
    };
    for (const { object, template } of baseWorkloads()) {
      for (const container of containersOf(template)) {
        const { requests = {}, limits = {} } = container.resources ?? {};
        for (const resource of ['cpu', 'memory']) {
          expect(requests[resource], `${id(object)} requests.${resource}`).toBeDefined();
          expect(limits[resource], `${id(object)} limits.${resource}`).toBeDefined();
          expect(quantity(limits[resource])).toBeGreaterThanOrEqual(quantity(requests[resource]));
        }
      }
    }
  });

  it('of the two services get a writable /tmp (emptyDir) and no service links or API token', () => {
    for (const { object, template } of baseWorkloads().filter(({ object }) => object.kind === 'Deployment')) {
      const pod = template.spec!;
      const tmp = pod.containers[0]!.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
      expect(tmp, `${id(object)} mounts nothing at /tmp`).toBeDefined();
      expect(pod.volumes?.find((volume) => volume.name === tmp!.name)?.emptyDir, id(object)).toBeDefined();
      expect(pod.enableServiceLinks, id(object)).toBe(false);
      expect(pod.automountServiceAccountToken, id(object)).toBe(false);
    }
  });

  it('carry the recommended app.kubernetes.io labels, which no selector uses', () => {
    for (const { dir, object } of allObjects(completeDirs())) {
      const labels = object.metadata.labels ?? {};
      for (const key of ['part-of', 'instance', 'managed-by']) {
        expect(labels[`app.kubernetes.io/${key}`], `k8s/${dir} ${id(object)} lacks app.kubernetes.io/${key}`).toBeDefined();
      }
      if (object.kind !== 'ConfigMap') expect(labels['app.kubernetes.io/name'], `k8s/${dir} ${id(object)}`).toBeDefined();
      for (const { template, selector } of workloads([object])) {
        expect(podLabels(template)['app.kubernetes.io/name'], `k8s/${dir} ${id(object)} pods`).toBeDefined();
        expect(Object.keys(selector).filter((key) => key.startsWith('app.kubernetes.io/'))).toEqual([]);
      }
      const serviceSelector = object.kind === 'Service' ? ((object.spec as { selector?: Record<string, string> }).selector ?? {}) : {};
      expect(Object.keys(serviceSelector).filter((key) => key.startsWith('app.kubernetes.io/'))).toEqual([]);
    }
  });

  it('have a disruption budget for each service, taking one pod at a time', () => {
    const objects = objectsOf(rendered, 'base');
    const budgets = ofKind(objects, 'PodDisruptionBudget');
    const covered = (name: string) =>
      budgets.some((budget) => {
        const spec = budget.spec as { maxUnavailable?: number; selector: { matchLabels: Record<string, string> } };
        return spec.maxUnavailable === 1 && selects(spec.selector.matchLabels, podLabels(workloads(objects).find((w) => w.object.metadata.name === name)!.template));
      });
    for (const name of ['usermgmt-microservice', 'v1-notification-microservice', 'v2-notification-microservice']) {
      expect(covered(name), `${name} has no budget`).toBe(true);
    }
  });
});

describe('around the services', () => {
  it('the X-Ray daemon runs as a DaemonSet with an IRSA ServiceAccount behind the headless Service xray-service', () => {
    const objects = objectsOf(rendered, 'base');
    const daemon = workloads(objects).find(({ object }) => object.kind === 'DaemonSet')!;
    const accountName = daemon.template.spec?.serviceAccountName;
    const account = objects.find((object) => object.kind === 'ServiceAccount' && object.metadata.name === accountName)!;
    expect(account.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/.+/);
    const service = objects.find((object) => object.kind === 'Service' && object.metadata.name === 'xray-service')!;
    const spec = service.spec as { clusterIP: string; selector: Record<string, string>; ports: { port: number; protocol: string; targetPort: string }[] };
    expect(spec.clusterIP).toBe('None');
    expect(selects(spec.selector, podLabels(daemon.template))).toBe(true);
    expect(spec.ports.map(({ port, protocol }) => `${port}/${protocol}`).sort()).toEqual(['2000/TCP', '2000/UDP']);
    const ports = daemon.template.spec!.containers[0]!.ports!;
    for (const { targetPort, protocol } of spec.ports) {
      expect(ports.find((port) => port.name === targetPort)?.protocol).toBe(protocol);
    }
    const volume = daemon.template.spec!.volumes!.find((candidate) => candidate.configMap)!;
    const config = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === volume.configMap!.name)!;
    expect((config.data as Record<string, string>)['config.yaml']).toMatch(/UDPAddress: "0\.0\.0\.0:2000"/);
  });

  it('the Ingress sends everything to user management over HTTPS with a redirect and an ExternalDNS host name', () => {
    const objects = objectsOf(rendered, 'base');
    const [ingress, ...others] = ofKind(objects, 'Ingress');
    expect(others).toEqual([]);
    expect(ingress!.metadata.name).toBe('eks-microservices-demo-canary');
    const annotations = ingress!.metadata.annotations!;
    expect(annotations['alb.ingress.kubernetes.io/ssl-redirect']).toBe('443');
    expect(JSON.parse(annotations['alb.ingress.kubernetes.io/listen-ports']!)).toEqual([{ HTTPS: 443 }, { HTTP: 80 }]);
    expect(annotations['alb.ingress.kubernetes.io/certificate-arn']).toMatch(/^arn:aws:acm:/);
    expect(annotations['external-dns.alpha.kubernetes.io/hostname']).toBeDefined();
    const backend = (ingress!.spec as { rules: { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] }).rules[0]!.http.paths[0]!.backend.service;
    const service = objects.find((object) => object.kind === 'Service' && object.metadata.name === backend.name)!;
    expect((service.spec as { type: string }).type).toBe('NodePort');
    expect((service.spec as { ports: { name: string }[] }).ports.map((port) => port.name)).toContain(backend.port.name);
  });
});
