import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a sampled function lives: an npm package, one of our packages, a part of node, or V8 itself. */
export function categoryOf(url: string, functionName: string): string | undefined {
  if (url === '') {
    if (functionName === '(idle)' || functionName === '(root)') return undefined;
    if (functionName === '(garbage collector)') return 'V8: garbage collector';
    if (functionName === '(program)') return 'V8: compiled code and runtime (program)';
    // Code compiled at run time with new Function: fast-json-stringify's serializers and ajv's validators.
    if (/^anonymous\d*$/.test(functionName)) return 'generated code (fast-json-stringify, ajv)';
    return functionName === '' ? 'native: (unnamed)' : `native: ${functionName}`;
  }
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [first, second] = url.slice(modules + '/node_modules/'.length).split('/');
    return first?.startsWith('@') ? `${first}/${second}` : (first ?? 'node_modules');
  }
  if (url.startsWith('node:')) {
    const part = url.slice('node:'.length).replace(/^internal\//, '').split('/')[0] ?? '';
    // `_http_server`, `_stream_readable`: the old top-level files, named after their module.
    return `node: ${part.startsWith('_') ? part.slice(1).replace(/_.*$/, '') : part}`;
  }
  const ours = /\/(packages|services|tools)\/([^/]+)\//.exec(url);
  if (ours?.[1] === 'packages') return `@canary/${ours[2]}`;
  if (ours?.[1] === 'services') return `${ours[2]} (ours)`;
  if (ours?.[1] === 'tools') return 'the baseline servers (ours)';
  return 'other';
}

/** Busy (non-idle) CPU time in microseconds, in total and by category (largest first), of V8 .cpuprofile files added up. */
export function summarizeProfiles(files: readonly string[]): { busyMicros: number; categories: Array<{ category: string; micros: number }> } {
  const byCategory = new Map<string, number>();
  let busy = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const category = new Map<number, string | undefined>();
    for (const node of profile.nodes) category.set(node.id, categoryOf(node.callFrame.url, node.callFrame.functionName));
    profile.samples.forEach((id, i) => {
      // The first delta runs from the profiler's own start (inside inspector's post), not from a real sample.
      const name = i === 0 ? undefined : category.get(id);
      if (name === undefined) return;
      const micros = profile.timeDeltas[i] ?? 0;
      busy += micros;
      byCategory.set(name, (byCategory.get(name) ?? 0) + micros);
    });
  }
  const categories = [...byCategory.entries()].map(([category, micros]) => ({ category, micros })).sort((a, b) => b.micros - a.micros);
  return { busyMicros: busy, categories };
}
