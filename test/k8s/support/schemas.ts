import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { K8sObject } from './objects.js';
import { repoRoot } from './kustomize.js';

/**
 * Where the model of an apiVersion/kind lives: `kubernetes-models` for Kubernetes' own kinds (generated from
 * the API server's OpenAPI document), `@kubernetes-models/istio` (from Istio's CRDs) and
 * `@kubernetes-models/gateway-api` (from the Gateway API types) for the mesh resources.
 */
export function modelModule({ apiVersion, kind }: Pick<K8sObject, 'apiVersion' | 'kind'>): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (group === 'istio.io' || group.endsWith('.istio.io')) return `@kubernetes-models/istio/${apiVersion}/${kind}`;
  if (group === 'gateway.networking.k8s.io') return `@kubernetes-models/gateway-api/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface Model {
  validate(): void;
}
type ModelClass = new (data: K8sObject) => Model;

const models = new Map<string, Promise<ModelClass>>();

async function loadModel(object: K8sObject): Promise<ModelClass> {
  const specifier = modelModule(object);
  const module = (await import(specifier).catch(() => {
    throw new Error(`no schema for ${object.apiVersion} ${object.kind} (looked for ${specifier})`);
  })) as Record<string, unknown>;
  const model = module[object.kind];
  if (typeof model !== 'function') throw new Error(`${specifier} does not export ${object.kind}`);
  return model as ModelClass;
}

/** Validates one object against its JSON schema (types, required fields, enums, formats, bounds). */
export async function validateAgainstSchema(object: K8sObject): Promise<void> {
  const key = `${object.apiVersion}/${object.kind}`;
  if (!models.has(key)) models.set(key, loadModel(object));
  const Model = await models.get(key)!;
  new Model(object).validate();
}

export interface FieldCheckInput {
  /** Where the object comes from, for the message: `overlays/canary-25 Deployment/v1-notification-microservice`. */
  label: string;
  object: K8sObject;
}

/**
 * The JSON schemas above accept fields they do not know (Kubernetes would prune or reject them at apply time),
 * so a misspelt field such as `initialDelaySecond` passes them. This check types each object as a TypeScript
 * object literal of the same package's interface: the compiler's excess-property check then names every
 * unknown field, at any depth.
 */
export function unknownFieldErrors(inputs: readonly FieldCheckInput[]): string[] {
  const imports: string[] = [];
  const body: string[] = [];
  const typeNames = new Map<string, string>();
  const owners: { firstLine: number; label: string }[] = [];
  let line = 0;

  for (const { label, object } of inputs) {
    const module = modelModule(object);
    let typeName = typeNames.get(module);
    if (!typeName) {
      typeName = `T${typeNames.size}`;
      typeNames.set(module, typeName);
      imports.push(`import type { I${object.kind} as ${typeName} } from '${module}';`);
    }
    const literal = `export const object${owners.length}: ${typeName} = ${JSON.stringify(object, null, 1)};`;
    owners.push({ firstLine: line, label });
    body.push(literal);
    line += literal.split('\n').length;
  }

  const header = imports.join('\n') + '\n';
  const headerLines = imports.length;
  const source = header + body.join('\n') + '\n';
  const lines = source.split('\n');
  return compilerErrors(source).map(({ line: at, message }) => {
    if (at < 0) return message;
    if (at < headerLines) return `${lines[at]}: ${message}`;
    const owner = [...owners].reverse().find((candidate) => candidate.firstLine <= at - headerLines);
    return `${owner?.label ?? '?'}: ${lines[at]?.trim()} -> ${message}`;
  });
}

const tscBin = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

/**
 * Type-checks one generated module with the project's `tsc` and returns its errors (0-based line). TypeScript 7
 * is a native compiler without the in-process API of 5.x, so the command line is the stable way in. The module
 * is written under node_modules/.cache so that it resolves the model packages as the tests do, and outside the
 * tree git sees.
 */
function compilerErrors(source: string): { line: number; message: string }[] {
  const cache = join(repoRoot, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'unknown-fields-'));
  try {
    writeFileSync(join(dir, 'objects.ts'), source);
    const compilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      types: [],
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['objects.ts'] }));
    const result = spawnSync(process.execPath, [tscBin, '-p', dir, '--pretty', 'false'], { encoding: 'utf8' });
    if (result.error) throw result.error;
    const errors = parseDiagnostics(result.stdout);
    // tsc exits 1 or 2 when it reports errors; any other failure, or one with nothing we can read, is the compiler
    // failing, which must not pass as "no unknown field".
    if (result.status !== 0 && (errors.length === 0 || (result.status !== 1 && result.status !== 2))) {
      throw new Error(`tsc exited with ${result.status ?? result.signal}: ${result.stderr}${result.stdout}`);
    }
    return errors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads `file(line,col): error TSnnnn: message` lines; a chained message's indented lines join its first. */
function parseDiagnostics(output: string): { line: number; message: string }[] {
  const errors: { line: number; message: string }[] = [];
  for (const text of output.split('\n')) {
    const head = /^.*?\((\d+),\d+\): error (TS\d+: .*)$/.exec(text);
    if (head) errors.push({ line: Number(head[1]) - 1, message: head[2]! });
    else if (/^\s+\S/.test(text) && errors.length > 0) errors.at(-1)!.message += ` ${text.trim()}`;
    else if (/^error TS\d+/.test(text)) errors.push({ line: -1, message: text });
  }
  return errors;
}
