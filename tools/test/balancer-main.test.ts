import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { askWho, startBackend, type TestBackend } from './backends.js';

const entry = fileURLToPath(new URL('../dist/balancer/main.js', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = fork(entry, [], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, output: () => output, exited };
}

async function listening(child: ChildProcess): Promise<number> {
  const [message] = (await once(child, 'message')) as [{ type: string; service: string; port: number }];
  expect(message).toMatchObject({ type: 'listening', service: 'balancer' });
  return message.port;
}

describe('balancer entry (tools/dist/balancer/main.js)', () => {
  it('balances over every address of BALANCER_TARGETS and stops on SIGTERM with exit code 0', async () => {
    const backends: TestBackend[] = await Promise.all([startBackend('one'), startBackend('two')]);
    for (const backend of backends) cleanups.push(() => backend.close());
    const { child, output, exited } = start({
      BALANCER_PORT: '0',
      BALANCER_HOST: '127.0.0.1',
      BALANCER_TARGETS: backends.map((b) => `localhost:${b.port}`).join(','),
      BALANCER_HEALTH_INTERVAL_MS: '100',
    });
    const port = await listening(child);

    const seen = new Set<string>();
    for (let i = 0; i < 100 && seen.size < 2; i += 1) {
      try {
        seen.add(await askWho(port));
      } catch {
        // Reset until the first probes have answered: no backend is healthy yet.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect([...seen].sort()).toEqual(['one', 'two']);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output()).toContain('"msg":"balancer listening"');
    expect(output()).toContain(`"msg":"backend 127.0.0.1:${backends[0]!.port} healthy"`);
    expect(output()).toContain('"msg":"balancer stopped"');
  });

  it('refuses to start with a message naming the bad variable', async () => {
    const missing = start({ BALANCER_PORT: '0' });
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toBe('balancer: Invalid environment: BALANCER_TARGETS is required\n');

    const bad = start({ BALANCER_TARGETS: 'notification-v1', BALANCER_PORT: '70000' });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toBe('balancer: Invalid environment: BALANCER_PORT must be <= 65535\n');

    const badTarget = start({ BALANCER_TARGETS: 'notification-v1' });
    expect(await badTarget.exited).toBe(1);
    expect(badTarget.output()).toBe('balancer: Invalid environment: BALANCER_TARGETS "notification-v1" is not host:port with a port from 1 to 65535\n');
  });
});
