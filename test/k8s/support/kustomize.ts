import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import type { K8sObject } from './objects.js';

const run = promisify(execFile);

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const k8sRoot = join(repoRoot, 'k8s');

const kustomizationFileNames = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export interface KustomizationDir {
  /** Path under k8s/, with forward slashes: `overlays/canary-25`. */
  dir: string;
  kind: 'Kustomization' | 'Component';
  /** The kustomization file as written (resources, images, replicas, ...). */
  spec: Record<string, unknown>;
}

const installHint = 'install kubectl 1.27 or later (it includes kustomize v5), e.g. from https://kubernetes.io/docs/tasks/tools/';

/**
 * Fails with a message saying what to install, instead of a bare ENOENT from execFile, or a puzzling
 * kustomize error from an old kubectl (Debian 12's kubernetes-client is 1.20, with kustomize v2).
 */
export async function requireKubectl(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await run('kubectl', ['version', '--client', '-o', 'json'], { env }));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'kubectl is not on PATH' : `\`kubectl version --client\` failed: ${(err as Error).message}`;
    throw new Error(`${reason}. The manifest tests render every kustomization under k8s/ with \`kubectl kustomize\`: ${installHint}.`);
  }
  const version = JSON.parse(stdout) as { kustomizeVersion?: string; clientVersion?: { gitVersion?: string } };
  const found = `kubectl ${version.clientVersion?.gitVersion ?? '?'}, kustomize ${version.kustomizeVersion ?? 'none'}`;
  const kustomizeMajor = Number(/^v(\d+)\./.exec(version.kustomizeVersion ?? '')?.[1] ?? 0);
  if (kustomizeMajor < 5) throw new Error(`${found} is too old to render k8s/ (components, labels, replicas): ${installHint}.`);
  return found;
}

/** Every directory under k8s/ that holds a kustomization, sorted, components included. */
export async function findKustomizations(root = k8sRoot): Promise<KustomizationDir[]> {
  const found: KustomizationDir[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    const file = entries.find((entry) => entry.isFile() && kustomizationFileNames.includes(entry.name));
    if (file) {
      const spec = parse(await readFile(join(dir, file.name), 'utf8')) as Record<string, unknown>;
      found.push({
        dir: relative(root, dir).split('\\').join('/'),
        kind: spec.kind === 'Component' ? 'Component' : 'Kustomization',
        spec,
      });
    }
    for (const entry of entries) if (entry.isDirectory()) await walk(join(dir, entry.name));
  }
  await walk(root);
  return found.sort((a, b) => a.dir.localeCompare(b.dir));
}

function parseObjects(yamlText: string, source: string): K8sObject[] {
  return parseAllDocuments(yamlText).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    return value === null ? [] : [value];
  });
}

async function kustomize(dir: string): Promise<string> {
  try {
    const { stdout } = await run('kubectl', ['kustomize', dir], { maxBuffer: 32 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`kubectl kustomize ${relative(repoRoot, dir)} failed: ${stderr.trim() || (err as Error).message}`);
  }
}

/**
 * Renders one kustomization. A directory with `*.example` files (k8s/secrets) needs the git-ignored files
 * they stand for: it is rendered from a temporary copy where each example takes its real name.
 */
export async function render(dir: string, root = k8sRoot): Promise<K8sObject[]> {
  const absolute = join(root, dir);
  const examples = (await readdir(absolute)).filter((name) => name.endsWith('.example'));
  if (examples.length === 0) return parseObjects(await kustomize(absolute), dir);

  const copy = await mkdtemp(join(tmpdir(), 'k8s-render-'));
  try {
    await cp(absolute, copy, { recursive: true });
    for (const example of examples) {
      const target = join(copy, example.slice(0, -'.example'.length));
      if (!existsSync(target)) await cp(join(copy, example), target);
    }
    return parseObjects(await kustomize(copy), dir);
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

/** The objects of a kustomization, or why it did not render. */
export type RenderResult = { objects: K8sObject[] } | { error: Error };

/** Renders every kustomization, two at a time (the machine is shared); a failure stays with its directory. */
export async function renderAll(dirs: readonly KustomizationDir[]): Promise<Map<string, RenderResult>> {
  const rendered = new Map<string, RenderResult>();
  const queue = [...dirs];
  async function worker(): Promise<void> {
    for (let next = queue.shift(); next; next = queue.shift()) {
      try {
        rendered.set(next.dir, { objects: await render(next.dir) });
      } catch (err) {
        rendered.set(next.dir, { error: err as Error });
      }
    }
  }
  await Promise.all([worker(), worker()]);
  return rendered;
}

/** The objects of a kustomization that must have rendered (its own test reports the error otherwise). */
export function objectsOf(rendered: Map<string, RenderResult>, dir: string): K8sObject[] {
  const result = rendered.get(dir);
  if (!result) throw new Error(`k8s/${dir} was not rendered`);
  if ('error' in result) throw result.error;
  return result.objects;
}
