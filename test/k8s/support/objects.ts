import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IService } from 'kubernetes-models/v1/Service';

/** What every rendered object has; the rest is checked by the schema tests before it is read. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export interface Workload {
  object: K8sObject;
  /** `spec.replicas` of a Deployment (1 when unset, as the API server defaults it); undefined for a DaemonSet. */
  replicas: number | undefined;
  selector: Record<string, string>;
  template: IPodTemplateSpec;
}

const workloadKinds = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);

export function ofKind(objects: readonly K8sObject[], kind: string): K8sObject[] {
  return objects.filter((object) => object.kind === kind);
}

export function named(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

export function workloads(objects: readonly K8sObject[]): Workload[] {
  return objects
    .filter((object) => workloadKinds.has(object.kind))
    .map((object) => {
      const spec = object.spec as {
        replicas?: number;
        selector: { matchLabels?: Record<string, string> };
        template: IPodTemplateSpec;
      };
      return {
        object,
        replicas: object.kind === 'DaemonSet' ? undefined : (spec.replicas ?? 1),
        selector: spec.selector.matchLabels ?? {},
        template: spec.template,
      };
    });
}

export function workload(objects: readonly K8sObject[], name: string): Workload {
  const found = workloads(objects).find((candidate) => candidate.object.metadata.name === name);
  if (!found) throw new Error(`no workload ${name}`);
  return found;
}

export function podLabels(template: IPodTemplateSpec): Record<string, string> {
  return template.metadata?.labels ?? {};
}

/** Whether a label selector (matchLabels form) selects these labels; an empty selector selects nothing here. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const pairs = Object.entries(selector);
  return pairs.length > 0 && pairs.every(([key, value]) => labels[key] === value);
}

export function containersOf(template: IPodTemplateSpec): IContainer[] {
  return [...(template.spec?.initContainers ?? []), ...(template.spec?.containers ?? [])];
}

export function serviceSpec(object: K8sObject): NonNullable<IService['spec']> {
  return (object.spec ?? {}) as NonNullable<IService['spec']>;
}

/** A container port given as a number or as the name of one of its ports. */
export function containerPortNumber(container: IContainer, port: number | string): number {
  if (typeof port === 'number') return port;
  const found = container.ports?.find((candidate) => candidate.name === port);
  if (!found) throw new Error(`container ${container.name} has no port named ${port}`);
  return found.containerPort;
}

export type EnvSource =
  | { from: 'value'; value: string }
  | { from: 'configMap'; name: string; key: string; value: string }
  | { from: 'secret'; name: string; key: string }
  | { from: 'field'; path: string };

function configMapData(objects: readonly K8sObject[], name: string): Record<string, string> {
  const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === name);
  if (!configMap) throw new Error(`ConfigMap ${name} is referenced but not rendered`);
  return (configMap.data ?? {}) as Record<string, string>;
}

/**
 * Every variable a container gets and where it comes from, as the kubelet builds the environment:
 * `envFrom` first, then `env` (later entries win). Variables from a whole Secret (`envFrom.secretRef`) cannot
 * be listed from the manifests, so they are refused rather than ignored.
 */
export function containerEnv(container: IContainer, objects: readonly K8sObject[]): Map<string, EnvSource> {
  const env = new Map<string, EnvSource>();
  for (const source of container.envFrom ?? []) {
    if (source.secretRef) throw new Error(`container ${container.name}: envFrom.secretRef hides which variables it sets`);
    if (!source.configMapRef) continue;
    const name = source.configMapRef.name ?? '';
    for (const [key, value] of Object.entries(configMapData(objects, name))) {
      env.set(`${source.prefix ?? ''}${key}`, { from: 'configMap', name, key, value });
    }
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (from?.secretKeyRef) {
      env.set(variable.name, { from: 'secret', name: from.secretKeyRef.name ?? '', key: from.secretKeyRef.key });
    } else if (from?.configMapKeyRef) {
      const { name = '', key } = from.configMapKeyRef;
      const value = configMapData(objects, name)[key];
      if (value === undefined) throw new Error(`ConfigMap ${name} has no key ${key}`);
      env.set(variable.name, { from: 'configMap', name, key, value });
    } else if (from?.fieldRef) {
      env.set(variable.name, { from: 'field', path: from.fieldRef.fieldPath });
    } else if (from) {
      throw new Error(`container ${container.name}: unsupported valueFrom for ${variable.name}`);
    } else {
      env.set(variable.name, { from: 'value', value: variable.value ?? '' });
    }
  }
  return env;
}

export interface NamedProbe {
  kind: 'startupProbe' | 'readinessProbe' | 'livenessProbe';
  probe: IProbe;
}

export function probesOf(container: IContainer): NamedProbe[] {
  const kinds = ['startupProbe', 'readinessProbe', 'livenessProbe'] as const;
  return kinds.flatMap((kind) => (container[kind] ? [{ kind, probe: container[kind] }] : []));
}

/** Longest time a probe lets a container take before it acts: delay + period x failures. */
export function probeBudgetSeconds(probe: IProbe): number {
  return (probe.initialDelaySeconds ?? 0) + (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3);
}
