import { afterEach, describe, expect, it } from 'vitest';
import { createBalancer, type Balancer } from '../src/balancer/index.js';
import { parseTargets, watchTargets, type Lookup, type TargetWatch } from '../src/balancer/dns-targets.js';
import { askWho, healthPath, startBackend, until } from './backends.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function balancer(): Promise<Balancer> {
  const created = await createBalancer({ port: 0, healthPath, healthIntervalMs: 100 });
  cleanups.push(() => created.close());
  return created;
}

function watch(watcher: TargetWatch): TargetWatch {
  cleanups.push(() => watcher.stop());
  return watcher;
}

function dnsError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ${code}`), { code });
}

describe('parseTargets', () => {
  it('reads a comma list of host:port, IPv6 hosts in brackets', () => {
    expect(parseTargets('notification-v1:8096, notification-v2:8096,[::1]:80,10.0.0.1:1')).toEqual([
      { host: 'notification-v1', port: 8096 },
      { host: 'notification-v2', port: 8096 },
      { host: '::1', port: 80 },
      { host: '10.0.0.1', port: 1 },
    ]);
  });

  it.each([['notification'], ['host:0'], ['host:65536'], ['host:port'], [':8096'], ['a b:1'], [' , ']])('refuses %j', (list) => {
    expect(() => parseTargets(list)).toThrow(/is not host:port|no host:port given/);
  });
});

describe('watchTargets', () => {
  it('resolves a host name with the system resolver and balances over what it answers', async () => {
    const backend = await startBackend('local');
    cleanups.push(() => backend.close());
    const target = await balancer();
    const watcher = watch(watchTargets({ targets: parseTargets(`localhost:${backend.port}`), balancer: target, intervalMs: 1000 }));
    await watcher.refresh();

    expect(target.backends().map((b) => b.id)).toContain(`127.0.0.1:${backend.port}`);
    await target.whenHealthy({ host: '127.0.0.1', port: backend.port });
    expect(await askWho(target.port)).toBe('local');
  });

  it('follows the answers as replicas come and go, and keeps the last ones on a temporary DNS failure', async () => {
    let answer: string[] | Error = ['10.0.0.1'];
    const lookup: Lookup = async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    };
    const errors: string[] = [];
    const target = await balancer();
    const watcher = watch(
      watchTargets({
        targets: parseTargets('notification-v1:8096,10.9.9.9:9000'),
        balancer: target,
        lookup,
        intervalMs: 50,
        onError: (t, err) => errors.push(`${t.host}: ${err.message}`),
      }),
    );
    const ids = (): string[] => target.backends().map((b) => b.id).sort();
    await watcher.refresh();
    expect(ids()).toEqual(['10.0.0.1:8096', '10.9.9.9:9000']);

    answer = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
    await until(() => ids().length === 4, 'the scaled-up replicas');
    expect(ids()).toEqual(['10.0.0.1:8096', '10.0.0.2:8096', '10.0.0.3:8096', '10.9.9.9:9000']);

    answer = ['10.0.0.3'];
    await until(() => ids().length === 2, 'the scaled-down replicas to go');
    expect(ids()).toEqual(['10.0.0.3:8096', '10.9.9.9:9000']);

    answer = dnsError('EAI_AGAIN');
    await until(() => errors.length >= 2, 'two failed lookups');
    expect(errors[0]).toBe('notification-v1: getaddrinfo EAI_AGAIN');
    expect(ids()).toEqual(['10.0.0.3:8096', '10.9.9.9:9000']);

    answer = dnsError('ENOTFOUND');
    await until(() => ids().length === 1, 'a name scaled to zero to lose its addresses');
    expect(ids()).toEqual(['10.9.9.9:9000']);
  });
});
