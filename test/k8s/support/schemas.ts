import { join } from 'node:path';
import ts from 'typescript';
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
  const fileName = join(repoRoot, 'test', 'k8s', 'unknown-fields.generated.ts');

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion) : getSourceFile.call(host, name, languageVersion, ...rest);
  host.fileExists = (name) => name === fileName || fileExists.call(host, name);
  host.readFile = (name) => (name === fileName ? source : readFile.call(host, name));

  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName)!;
  const lines = source.split('\n');
  return ts.getPreEmitDiagnostics(program, sourceFile).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    if (diagnostic.start === undefined) return message;
    const at = sourceFile.getLineAndCharacterOfPosition(diagnostic.start).line;
    if (at < headerLines) return `${lines[at]}: ${message}`;
    const owner = [...owners].reverse().find((candidate) => candidate.firstLine <= at - headerLines);
    return `${owner?.label ?? '?'}: ${lines[at]?.trim()} -> ${message}`;
  });
}
