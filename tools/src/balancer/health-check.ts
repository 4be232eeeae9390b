import http from 'node:http';

/**
 * One readiness probe: true only for a 200 answer within `timeoutMs`. A fresh connection each time (no agent), so a
 * probe never rides on, or keeps open, a connection the balancer counts.
 */
export function probe(host: string, port: number, path: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host, port, path, agent: false, timeout: timeoutMs, signal, headers: { connection: 'close' } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode === 200));
      response.on('error', () => resolve(false));
    });
    request.on('timeout', () => request.destroy(new Error('health check timed out')));
    request.on('error', () => resolve(false));
  });
}
