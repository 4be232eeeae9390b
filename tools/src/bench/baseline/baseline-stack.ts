import type { ChildProcess } from 'node:child_process';
import { createBalancer, type Balancer } from '../../balancer/index.js';
import { entryPath, forkEntry, stopChild, waitForMessage } from '../child-processes.js';
import type { WatchedProcess } from '../load-generator.js';

export interface BaselineStack {
  /** `http://127.0.0.1:<port>` of the front server. */
  url: string;
  /** The front, and the back replicas under the role `notification` (as with our stack). */
  processes: WatchedProcess[];
  close(): Promise<void>;
}

export interface BaselineOptions {
  v1: number;
  v2: number;
  /** User management's NOTIFICATION_CONNECTION_POLICY variable, when it is set (else its default applies here too). */
  policyEnv: Record<string, string>;
  /** DB_* of the database whose `users` table the front lists. */
  databaseEnv: Record<string, string>;
  /** The `appversion` our service puts in each user, so both answer the same JSON. */
  appVersion: string;
  /** Extra variables for every process (the bench's profiler). */
  env?: Record<string, string>;
  /** The sink's `host:port`: every process then sends one datagram per traced request (the floor, segment-datagrams.ts). */
  daemonAddress?: string;
}

function listeningPort(message: unknown): number | undefined {
  const m = message as { type?: string; port?: number };
  return m.type === 'listening' ? m.port : undefined;
}

/** The bare-`http` two-hop chain: a front calling `v1 + v2` back replicas through the same TCP balancer as our stack. */
export async function startBaselineStack(options: BaselineOptions): Promise<BaselineStack> {
  const children: ChildProcess[] = [];
  let balancer: Balancer | undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled(children.map((child) => stopChild(child)));
    await balancer?.close();
  };
  const floorEnv = options.daemonAddress ? { BASELINE_XRAY_DAEMON_ADDRESS: options.daemonAddress } : {};
  try {
    const versions = [...Array<'V1'>(options.v1).fill('V1'), ...Array<'V2'>(options.v2).fill('V2')];
    const backs = await Promise.all(
      versions.map(async (version, i) => {
        const child = forkEntry(entryPath('baseline/back-server'), {
          ...process.env,
          ...options.env,
          ...floorEnv,
          BASELINE_VERSION: version,
          BASELINE_INSTANCE: `baseline-${version}-${i}`,
        });
        children.push(child);
        const port = await waitForMessage(child, listeningPort, 15_000, `baseline ${version} replica`);
        return { child, port };
      }),
    );
    balancer = await createBalancer({ host: '127.0.0.1', port: 0, healthPath: '/notification/health/ready' });
    for (const { port } of backs) balancer.addBackend({ host: '127.0.0.1', port });
    await Promise.all(backs.map(({ port }) => (balancer as Balancer).whenHealthy({ host: '127.0.0.1', port }, 15_000)));

    const front = forkEntry(entryPath('baseline/front-server'), {
      ...process.env,
      ...options.env,
      ...floorEnv,
      ...options.databaseEnv,
      ...options.policyEnv,
      NOTIFICATION_SERVICE_HOST: '127.0.0.1',
      NOTIFICATION_SERVICE_PORT: String(balancer.port),
      BASELINE_APP_VERSION: options.appVersion,
    });
    children.push(front);
    const port = await waitForMessage(front, listeningPort, 15_000, 'baseline front');
    return {
      url: `http://127.0.0.1:${port}`,
      processes: [
        { role: 'front', pid: front.pid as number },
        ...backs.map(({ child }) => ({ role: 'notification', pid: child.pid as number })),
      ],
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
