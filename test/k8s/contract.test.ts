import type { FastifyInstance } from 'fastify';
import type { TObject } from '@sinclair/typebox';
import { loadConfig, type Env } from '@canary/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp as buildNotificationApp } from '../../services/notification/src/app.js';
import { configSchema as notificationSchema, loadNotificationConfig } from '../../services/notification/src/config.js';
import { buildApp as buildUserManagementApp } from '../../services/user-management/src/app.js';
import { configSchema as userManagementSchema, loadUserManagementConfig } from '../../services/user-management/src/config.js';
import { findKustomizations, objectsOf, render, renderAll, requireKubectl, type RenderResult } from './support/kustomize.js';
import {
  containerEnv,
  containerPortNumber,
  named,
  ofKind,
  podLabels,
  probeBudgetSeconds,
  probesOf,
  selects,
  serviceSpec,
  workload,
  workloads,
  type EnvSource,
  type K8sObject,
  type Workload,
} from './support/objects.js';

/** The course's table: V2 share in percent -> [V1 replicas, V2 replicas]. */
const rows: Record<number, [number, number]> = { 0: [4, 0], 25: [3, 1], 50: [2, 2], 75: [1, 3], 100: [0, 4] };

interface ServiceCode {
  title: string;
  /** The course's port, which its Service, the container and the process must all agree on. */
  port: number;
  schema: TObject;
  load(env: Env): { PORT: number } & Record<string, unknown>;
  /** Path prefix of its routes, for the probes and the ALB health check. */
  prefix: string;
}

/** The services' code, by the container name the manifests give them. */
const code: Record<string, ServiceCode> = {
  'usermgmt-restapp': {
    title: 'user management',
    port: 8095,
    schema: userManagementSchema,
    load: loadUserManagementConfig,
    prefix: '/usermgmt/',
  },
  'notification-service': {
    title: 'notification',
    port: 8096,
    schema: notificationSchema,
    load: loadNotificationConfig,
    prefix: '/notification/',
  },
};

const kustomizations = await findKustomizations();
let rendered: Map<string, RenderResult>;
let secrets: K8sObject[];
const apps = new Map<string, FastifyInstance>();

beforeAll(async () => {
  await requireKubectl();
  rendered = await renderAll(kustomizations.filter(({ dir }) => dir === 'base' || /^(overlays|weighted)\//.test(dir)));
  secrets = await render('secrets');
  const quiet = { LOG_LEVEL: 'silent' };
  apps.set('notification-service', buildNotificationApp(loadNotificationConfig(quiet)));
  // No database here: without the outbox nothing connects before a request needs it.
  apps.set('usermgmt-restapp', buildUserManagementApp(loadConfig(userManagementSchema, quiet), { logging: false, outbox: false }));
  for (const app of apps.values()) await app.ready();
}, 120_000);

afterAll(async () => {
  for (const app of apps.values()) await app.close();
});

/** Every kustomization meant for `kubectl apply -k` that deploys the whole application. */
const deployments = kustomizations.map(({ dir }) => dir).filter((dir) => dir === 'base' || /^(overlays|weighted)\/.+/.test(dir));

const secretPlaceholder = 'placeholder-from-a-secret';

function plainEnv(sources: Map<string, EnvSource>): Env {
  return Object.fromEntries(
    [...sources].map(([name, source]) => [name, source.from === 'secret' ? secretPlaceholder : source.from === 'field' ? '10.0.0.1' : source.value]),
  );
}

interface ServiceContainer {
  workload: Workload;
  code: ServiceCode;
  containerName: string;
  env: Map<string, EnvSource>;
  config: { PORT: number } & Record<string, unknown>;
}

function serviceContainers(objects: K8sObject[]): ServiceContainer[] {
  return workloads(objects).flatMap((candidate) =>
    (candidate.template.spec?.containers ?? []).flatMap((container) => {
      const service = code[container.name];
      if (!service) return [];
      const env = containerEnv(container, objects);
      return [{ workload: candidate, code: service, containerName: container.name, env, config: service.load(plainEnv(env)) }];
    }),
  );
}

function containerOf({ workload: owner, containerName }: ServiceContainer) {
  return owner.template.spec!.containers.find((container) => container.name === containerName)!;
}

const where = (dir: string, { workload: owner }: ServiceContainer) => `k8s/${dir} ${owner.object.metadata.name}`;

describe.each(deployments)('k8s/%s against the services’ code', (dir) => {
  const objects = () => objectsOf(rendered, dir);

  it('runs both services: user management and notification V1 and V2', () => {
    const names = serviceContainers(objects()).map(({ workload: owner }) => owner.object.metadata.name);
    expect(names.sort()).toEqual(['usermgmt-microservice', 'v1-notification-microservice', 'v2-notification-microservice']);
  });

  it('gives each container only variables its service reads, all the required ones, each valid', () => {
    for (const container of serviceContainers(objects())) {
      const known = Object.keys(container.code.schema.properties);
      const unknown = [...container.env.keys()].filter((name) => !known.includes(name));
      expect(unknown, `${where(dir, container)} sets variables ${container.code.title} does not read`).toEqual([]);
      const properties = container.code.schema.properties as Record<string, { default?: unknown }>;
      const required = (container.code.schema.required ?? []).filter((name) => properties[name]?.default === undefined);
      expect(required.filter((name) => !container.env.has(name)), `${where(dir, container)} misses required variables`).toEqual([]);
      // serviceContainers() already loaded the config: an invalid value would have thrown, naming the variable.
      expect(container.config.PORT).toBe(container.code.port);
    }
  });

  it('has the process, the container and the Services agree on the port (8095, 8096)', () => {
    for (const container of serviceContainers(objects())) {
      expect(containerPortNumber(containerOf(container), 'http'), where(dir, container)).toBe(container.code.port);
      const fronting = ofKind(objects(), 'Service').filter((service) => selects(serviceSpec(service).selector ?? {}, podLabels(container.workload.template)));
      expect(fronting.length, `${where(dir, container)} has no Service`).toBeGreaterThan(0);
      for (const service of fronting) {
        for (const port of serviceSpec(service).ports ?? []) {
          expect(port.port, `${service.metadata.name}`).toBe(container.code.port);
          expect(containerPortNumber(containerOf(container), port.targetPort ?? port.port), `${service.metadata.name} targetPort`).toBe(container.code.port);
        }
      }
    }
  });

  it('sets APP_VERSION and the X-Ray segment name to match each notification Deployment’s version label', () => {
    const versions = serviceContainers(objects())
      .filter(({ code: service }) => service.title === 'notification')
      .map(({ workload: owner, config }) => {
        const label = podLabels(owner.template).version;
        expect(owner.selector.version, owner.object.metadata.name).toBe(label);
        expect(owner.object.metadata.name.startsWith(`${label}-`)).toBe(true);
        expect(config.APP_VERSION).toBe(label?.toUpperCase());
        expect(config.AWS_XRAY_TRACING_NAME).toBe(`${label?.toUpperCase()}-Notification-Microservice`);
        return label;
      });
    expect(versions.sort()).toEqual(['v1', 'v2']);
    const userManagement = serviceContainers(objects()).find(({ code: service }) => service.title === 'user management')!;
    expect(userManagement.config.AWS_XRAY_TRACING_NAME).toBe('User-Management-Microservice');
  });

  it('probes real routes on the service port: startup, readiness on health/ready, liveness on health/live', () => {
    for (const container of serviceContainers(objects())) {
      const app = apps.get(container.containerName)!;
      const probes = probesOf(containerOf(container));
      expect(probes.map(({ kind }) => kind).sort(), where(dir, container)).toEqual(['livenessProbe', 'readinessProbe', 'startupProbe']);
      for (const { kind, probe } of probes) {
        const url = probe.httpGet?.path ?? '';
        expect(app.hasRoute({ method: 'GET', url }), `${where(dir, container)} ${kind} GET ${url} is not a route`).toBe(true);
        expect(containerPortNumber(containerOf(container), probe.httpGet!.port)).toBe(container.code.port);
        // A Node process listens within a second or two: delays of seconds, not the JVM's 60.
        expect(probe.initialDelaySeconds ?? 0).toBeLessThanOrEqual(10);
        expect(probe.periodSeconds ?? 10).toBeLessThanOrEqual(10);
      }
      const path = (kind: string) => probes.find((probe) => probe.kind === kind)!.probe.httpGet!.path;
      expect(path('readinessProbe')).toBe(`${container.code.prefix}health/ready`);
      expect(path('livenessProbe')).toBe(`${container.code.prefix}health/live`);
    }
  });

  it('points the ALB health check at a real user management route', () => {
    const app = apps.get('usermgmt-restapp')!;
    const checked = ofKind(objects(), 'Service').flatMap((service) => {
      const url = service.metadata.annotations?.['alb.ingress.kubernetes.io/healthcheck-path'];
      return url ? [url] : [];
    });
    expect(checked.length).toBe(1);
    for (const url of checked) expect(app.hasRoute({ method: 'GET', url }), url).toBe(true);
  });

  it('lets preStop and the service’s shutdown grace finish inside terminationGracePeriodSeconds', () => {
    for (const container of serviceContainers(objects())) {
      const pause = containerOf(container).lifecycle?.preStop?.sleep?.seconds ?? 0;
      const grace = Number(container.config.SHUTDOWN_GRACE_MS) / 1000;
      const drain = Number(container.config.SHUTDOWN_DRAIN_MS) / 1000;
      const period = container.workload.template.spec?.terminationGracePeriodSeconds ?? 30;
      expect(pause, `${where(dir, container)} preStop sleep`).toBeGreaterThanOrEqual(5);
      expect(drain).toBeLessThan(grace);
      expect(pause + grace, `${where(dir, container)}: preStop ${pause} s + grace ${grace} s vs ${period} s`).toBeLessThan(period);
    }
  });

  it('lets a send finish within the caller’s response timeout and within the notification’s shutdown grace', () => {
    const containers = serviceContainers(objects());
    const caller = containers.find(({ code: service }) => service.title === 'user management')!.config;
    for (const { config } of containers.filter(({ code: service }) => service.title === 'notification')) {
      const send = Number(config.MAIL_SEND_TIMEOUT_MS);
      expect(send, 'user management would give up before the send has an outcome').toBeLessThan(Number(caller.NOTIFICATION_RESPONSE_TIMEOUT_MS));
      expect(send + Number(config.SHUTDOWN_DRAIN_MS), 'a send started before SIGTERM could be cut off').toBeLessThan(Number(config.SHUTDOWN_GRACE_MS));
    }
  });

  it('gives user management’s startup longer than its own wait for the database', () => {
    const userManagement = serviceContainers(objects()).find(({ code: service }) => service.title === 'user management')!;
    const startup = containerOf(userManagement).startupProbe!;
    expect(probeBudgetSeconds(startup)).toBeGreaterThan(Number(userManagement.config.DB_STARTUP_TIMEOUT_MS) / 1000 + 10);
  });

  it('names Services that exist for the database, the notification service and the X-Ray daemon', () => {
    const containers = serviceContainers(objects());
    const service = (name: string) => ofKind(objects(), 'Service').find((candidate) => candidate.metadata.name === name);
    const userManagement = containers.find(({ code: candidate }) => candidate.title === 'user management')!.config;
    expect(serviceSpec(service(String(userManagement.DB_HOSTNAME))!).type).toBe('ExternalName');
    const notification = service(String(userManagement.NOTIFICATION_SERVICE_HOST))!;
    expect(serviceSpec(notification).ports?.map((port) => port.port)).toEqual([userManagement.NOTIFICATION_SERVICE_PORT]);
    for (const { config } of containers) {
      const [host, port] = String(config.AWS_XRAY_DAEMON_ADDRESS).split(':');
      const daemon = service(host!);
      expect(daemon, `no Service ${host}`).toBeDefined();
      expect(serviceSpec(daemon!).ports?.some((candidate) => candidate.port === Number(port) && candidate.protocol === 'UDP')).toBe(true);
    }
    const smtp = serviceSpec(service('smtp-service')!).externalName;
    for (const { config } of containers.filter(({ code: candidate }) => candidate.title === 'notification')) {
      expect(config.AWS_MAIL_SERVER_HOST, 'the SMTP host and smtp-service name different SES endpoints').toBe(smtp);
    }
  });

  it('reads only Secrets and keys that k8s/secrets creates', () => {
    let references = 0;
    for (const container of serviceContainers(objects())) {
      for (const [name, source] of container.env) {
        if (source.from !== 'secret') continue;
        references++;
        const secret = secrets.find((candidate) => candidate.kind === 'Secret' && candidate.metadata.name === source.name);
        expect(secret, `${where(dir, container)} ${name}: no Secret ${source.name}`).toBeDefined();
        expect(Object.keys(secret!.data as object), `${where(dir, container)} ${name}`).toContain(source.key);
      }
    }
    expect(references).toBe(5);
  });

  it('selects V1 and V2 pods, and nothing else, with notification-clusterip-service', () => {
    const selector = serviceSpec(named(objects(), 'Service', 'notification-clusterip-service')).selector ?? {};
    expect(selector).toEqual({ app: 'notification-restapp' });
    const selected = workloads(objects()).filter(({ template }) => selects(selector, podLabels(template)));
    expect(selected.map(({ object }) => object.metadata.name).sort()).toEqual(['v1-notification-microservice', 'v2-notification-microservice']);
    const [v1, v2] = [workload(objects(), 'v1-notification-microservice'), workload(objects(), 'v2-notification-microservice')];
    expect(selects(v1.selector, podLabels(v2.template)), 'V1 would adopt V2 pods').toBe(false);
    expect(selects(v2.selector, podLabels(v1.template)), 'V2 would adopt V1 pods').toBe(false);
  });
});

describe('the canary by replicas: one overlay per row of the course table', () => {
  const replicas = (dir: string) =>
    ['v1-notification-microservice', 'v2-notification-microservice'].map((name) => workload(objectsOf(rendered, dir), name).replicas);

  it.each(Object.entries(rows))('overlays/canary-%s runs %j (V1, V2)', (share, expected) => {
    expect(replicas(`overlays/canary-${share}`)).toEqual(expected);
    const [v1, v2] = expected;
    expect(Math.round((100 * v2) / (v1 + v2))).toBe(Number(share));
  });

  it('the base runs the course demo row, 2 + 2, and so do the weighted variants whatever the weights', () => {
    for (const dir of deployments.filter((candidate) => !candidate.startsWith('overlays/'))) expect(replicas(dir), dir).toEqual([2, 2]);
  });
});

/** The V2 share a weighted step directory stands for: canary-25 -> 25, the mesh default -> 0. */
function stepShare(dir: string): number {
  const step = /\/canary-(\d+)$/.exec(dir);
  return step ? Number(step[1]) : 0;
}

/** The one notification Deployment whose pods these labels select, or a failure naming all of them. */
function versionSelected(objects: K8sObject[], selector: Record<string, string>): string {
  const matched = workloads(objects)
    .filter(({ template }) => selects(selector, podLabels(template)))
    .map(({ object }) => object.metadata.name);
  expect(matched.length, `${JSON.stringify(selector)} selects ${matched.join(', ') || 'nothing'}`).toBe(1);
  return matched[0]!;
}

/** The pod annotations of the X-Ray daemon: the daemon only receives UDP, so a mesh sidecar would be a proxy for nothing. */
function daemonAnnotations(objects: readonly K8sObject[]): Record<string, string> {
  return workload(objects, 'xray-daemon').template.metadata?.annotations ?? {};
}

describe('the weighted canary with Istio', () => {
  const dirs = deployments.filter((dir) => dir.startsWith('weighted/istio/'));

  it.each(dirs)('k8s/%s keeps the X-Ray daemon out of the mesh', (dir) => {
    expect(daemonAnnotations(objectsOf(rendered, dir))).toMatchObject({ 'sidecar.istio.io/inject': 'false' });
  });

  it.each(dirs)('k8s/%s routes by weights adding up to 100, V2 getting the step’s share, to subsets of one version each', (dir) => {
    const objects = objectsOf(rendered, dir);
    const [virtualService, ...otherRoutes] = ofKind(objects, 'VirtualService');
    expect(otherRoutes).toEqual([]);
    const spec = virtualService!.spec as { hosts: string[]; http: { route: { destination: { host: string; subset: string; port?: { number: number } }; weight: number }[] }[] };
    expect(spec.hosts).toEqual(['notification-clusterip-service']);
    const [http, ...otherRules] = spec.http;
    expect(otherRules).toEqual([]);
    const total = http!.route.reduce((sum, { weight }) => sum + weight, 0);
    expect(total).toBe(100);

    const rules = ofKind(objects, 'DestinationRule').map((rule) => rule.spec as { host: string; subsets: { name: string; labels: Record<string, string> }[] });
    const byVersion = new Map<string, number>();
    for (const { destination, weight } of http!.route) {
      expect(destination.host).toBe('notification-clusterip-service');
      expect(destination.port?.number ?? 8096).toBe(8096);
      const subset = rules.find((rule) => rule.host === destination.host)?.subsets.find((candidate) => candidate.name === destination.subset);
      expect(subset, `no subset ${destination.subset}`).toBeDefined();
      byVersion.set(versionSelected(objects, subset!.labels), weight);
    }
    expect(Object.fromEntries(byVersion)).toEqual({
      'v1-notification-microservice': 100 - stepShare(dir),
      'v2-notification-microservice': stepShare(dir),
    });
  });
});

describe('the weighted canary with the Gateway API', () => {
  const dirs = deployments.filter((dir) => dir.startsWith('weighted/gateway-api/'));

  it.each(dirs)('k8s/%s keeps the X-Ray daemon out of either mesh that implements it for Services (Istio, Linkerd)', (dir) => {
    expect(daemonAnnotations(objectsOf(rendered, dir))).toMatchObject({ 'sidecar.istio.io/inject': 'false', 'linkerd.io/inject': 'disabled' });
  });

  it.each(dirs)('k8s/%s routes calls to notification-clusterip-service by weights adding up to 100 to one Service per version', (dir) => {
    const objects = objectsOf(rendered, dir);
    const [route, ...otherRoutes] = ofKind(objects, 'HTTPRoute');
    expect(otherRoutes).toEqual([]);
    const spec = route!.spec as {
      parentRefs: { group: string; kind: string; name: string; port: number }[];
      rules: { backendRefs: { name: string; port: number; weight: number }[] }[];
    };
    expect(spec.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'notification-clusterip-service', port: 8096 }]);
    expect(serviceSpec(named(objects, 'Service', 'notification-clusterip-service')).ports?.map((port) => port.port)).toEqual([8096]);
    const [rule, ...otherRules] = spec.rules;
    expect(otherRules).toEqual([]);
    expect(rule!.backendRefs.reduce((sum, { weight }) => sum + weight, 0)).toBe(100);

    const byVersion = new Map<string, number>();
    for (const { name, port, weight } of rule!.backendRefs) {
      const backend = serviceSpec(named(objects, 'Service', name));
      expect(backend.ports?.map((candidate) => candidate.port)).toEqual([port]);
      const selected = versionSelected(objects, backend.selector ?? {});
      expect(containerPortNumber(workload(objects, selected).template.spec!.containers[0]!, backend.ports![0]!.targetPort ?? port)).toBe(8096);
      byVersion.set(selected, weight);
    }
    expect(Object.fromEntries(byVersion)).toEqual({
      'v1-notification-microservice': 100 - stepShare(dir),
      'v2-notification-microservice': stepShare(dir),
    });
  });
});
