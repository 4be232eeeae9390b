import type autocannon from 'autocannon';
import type { Percentiles, RouteFigures } from './load-protocol.js';

export type Route = 'GET /usermgmt/users' | 'GET /usermgmt/user/{username}' | 'POST /usermgmt/user' | 'GET /usermgmt/notification-xray';

/**
 * The sequence every client repeats: mostly reads, a fifth of them proxied to the notification service, and one
 * create in ten (bcrypt makes a create cost about 100 ms of CPU, so sign-ups set the pace on two cores).
 */
export const sequence: Route[] = [
  'GET /usermgmt/user/{username}',
  'GET /usermgmt/users',
  'GET /usermgmt/user/{username}',
  'GET /usermgmt/notification-xray',
  'GET /usermgmt/user/{username}',
  'POST /usermgmt/user',
  'GET /usermgmt/user/{username}',
  'GET /usermgmt/users',
  'GET /usermgmt/user/{username}',
  'GET /usermgmt/notification-xray',
];

interface ClientContext {
  sentAt?: number;
}

export interface MixRecorder {
  requests: autocannon.Request[];
  figures(): { byRoute: Record<string, RouteFigures>; xrayVersions: Record<string, number>; created: number };
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  const round = (ms: number): number => Math.round(ms * 10) / 10;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1] ?? 0) };
}

/**
 * autocannon requests for the sequence, each recording its route's status and latency (from the moment the request
 * is built, right before it is written: one request at a time per connection) and, for the proxy route, the version.
 */
export function requestMix(usernames: readonly string[], runTag: string): MixRecorder {
  const statuses = new Map<Route, Map<number, number>>();
  const latencies = new Map<Route, number[]>();
  const xrayVersions: Record<string, number> = {};
  let created = 0;
  let nextRead = 0;

  const requests = sequence.map((route): autocannon.Request => {
    const [method, template] = route.split(' ') as ['GET' | 'POST', string];
    return {
      method,
      path: template,
      setupRequest(request, context) {
        (context as ClientContext).sentAt = performance.now();
        if (route === 'GET /usermgmt/user/{username}') {
          nextRead = (nextRead + 1) % usernames.length;
          return { ...request, path: `/usermgmt/user/${usernames[nextRead]}` };
        }
        if (route === 'POST /usermgmt/user') {
          created += 1;
          const username = `l${runTag}${created.toString(36)}`;
          const body = { username, email: `${username}@load.example.com`, firstname: 'Load', lastname: 'Test', password: 'Load@1234' };
          return { ...request, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
        }
        return request;
      },
      onResponse(status, body, context) {
        const sentAt = (context as ClientContext).sentAt;
        if (sentAt !== undefined) {
          let list = latencies.get(route);
          if (!list) latencies.set(route, (list = []));
          list.push(performance.now() - sentAt);
        }
        const counts = statuses.get(route) ?? new Map<number, number>();
        counts.set(status, (counts.get(status) ?? 0) + 1);
        statuses.set(route, counts);
        if (route === 'GET /usermgmt/notification-xray' && status === 200) {
          const version = (JSON.parse(body) as { appversion?: string }).appversion ?? '?';
          xrayVersions[version] = (xrayVersions[version] ?? 0) + 1;
        }
      },
    };
  });

  return {
    requests,
    figures() {
      const byRoute: Record<string, RouteFigures> = {};
      for (const route of new Set(sequence)) {
        byRoute[route] = {
          statuses: Object.fromEntries([...(statuses.get(route) ?? new Map<number, number>())].map(([status, count]) => [String(status), count])),
          latencyMs: percentiles(latencies.get(route) ?? []),
        };
      }
      return { byRoute, xrayVersions, created };
    },
  };
}
