import type { BalancerEvent } from './balancer.js';

export interface EventLine {
  level: 'info' | 'warn';
  message: string;
}

/**
 * Turns balancer events into log lines. "No healthy backend" is logged at most once per `quietMs`, with a count:
 * under load with no backend it would otherwise be one line per refused connection.
 */
export function balancerEventLog(write: (line: EventLine) => void, quietMs = 5000): (event: BalancerEvent) => void {
  let refused = 0;
  let lastNotice = -Infinity;
  return (event) => {
    switch (event.type) {
      case 'added':
        write({ level: 'info', message: `backend ${event.backend} added, in use once healthy` });
        return;
      case 'removed':
        write({ level: 'info', message: `backend ${event.backend} removed: no new connections` });
        return;
      case 'healthy':
        write({ level: 'info', message: `backend ${event.backend} healthy` });
        return;
      case 'unhealthy':
        write({ level: 'warn', message: `backend ${event.backend} unhealthy: no new connections until it answers 200 again` });
        return;
      case 'connect-failed':
        write({ level: 'warn', message: `backend ${event.backend} refused a connection (${event.error}); trying another` });
        return;
      case 'no-backend': {
        refused += 1;
        const now = Date.now();
        if (now - lastNotice >= quietMs) {
          write({ level: 'warn', message: `no healthy backend: ${refused} connection(s) reset` });
          lastNotice = now;
          refused = 0;
        }
        return;
      }
    }
  };
}
