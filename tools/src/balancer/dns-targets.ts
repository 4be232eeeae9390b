import { promises as dns } from 'node:dns';
import net from 'node:net';
import { backendId, type BackendAddress, type Balancer } from './balancer.js';

export interface Target {
  host: string;
  port: number;
}

/** Every address of a host name (all A and AAAA answers, as getaddrinfo gives them). */
export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => (await dns.lookup(host, { all: true })).map((entry) => entry.address);

/** Parses `host:port,host:port` (an IPv6 host in brackets: `[::1]:8096`). */
export function parseTargets(list: string): Target[] {
  const targets = list
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => {
      const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(item);
      const port = Number(match?.[3]);
      if (!match || port < 1 || port > 65535) throw new Error(`"${item}" is not host:port with a port from 1 to 65535`);
      return { host: match[1] ?? match[2] ?? '', port };
    });
  if (targets.length === 0) throw new Error('no host:port given');
  return targets;
}

/** Names that no longer exist (a compose service scaled to 0): they have no address rather than a failure. */
const noSuchName = new Set(['ENOTFOUND', 'ENODATA']);

export interface TargetWatchOptions {
  targets: Target[];
  balancer: Pick<Balancer, 'addBackend' | 'removeBackend'>;
  lookup?: Lookup;
  intervalMs: number;
  /** A lookup failed for another reason than "no such name"; that target keeps its previous addresses. */
  onError?: (target: Target, error: Error) => void;
}

export interface TargetWatch {
  /** Resolves every target once and applies the result. */
  refresh(): Promise<void>;
  stop(): void;
}

/**
 * Keeps the balancer's backends equal to the addresses the targets resolve to, re-resolving every `intervalMs`:
 * with `docker compose --scale`, Docker's DNS answers a service name with one address per replica.
 */
export function watchTargets({ targets, balancer, lookup = systemLookup, intervalMs, onError }: TargetWatchOptions): TargetWatch {
  const known = new Map<Target, BackendAddress[]>(targets.map((target) => [target, []]));
  const applied = new Map<string, BackendAddress>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;

  async function resolve(target: Target): Promise<void> {
    try {
      const addresses = net.isIP(target.host) ? [target.host] : await lookup(target.host);
      known.set(target, addresses.map((host) => ({ host, port: target.port })));
    } catch (err) {
      const error = err as NodeJS.ErrnoException;
      if (error.code && noSuchName.has(error.code)) known.set(target, []);
      else onError?.(target, error);
    }
  }

  async function refreshOnce(): Promise<void> {
    await Promise.all(targets.map(resolve));
    if (stopped) return;
    const wanted = new Map<string, BackendAddress>();
    for (const addresses of known.values()) for (const address of addresses) wanted.set(backendId(address), address);
    for (const [id, address] of applied) {
      if (!wanted.has(id)) {
        balancer.removeBackend(address);
        applied.delete(id);
      }
    }
    for (const [id, address] of wanted) {
      if (!applied.has(id)) {
        balancer.addBackend(address);
        applied.set(id, address);
      }
    }
  }

  function refresh(): Promise<void> {
    // One resolution at a time: a slow DNS answer must not be overtaken by, and then overwrite, a newer one.
    running ??= refreshOnce().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => void refresh().finally(schedule), intervalMs);
  }
  schedule();

  return {
    refresh,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
