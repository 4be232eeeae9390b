import { hostname, networkInterfaces } from 'node:os';

type Interfaces = ReturnType<typeof networkInterfaces>;

/** The first non-internal IPv4 address (the pod IP in Kubernetes), else the loopback address. */
export function hostAddress(interfaces: Interfaces = networkInterfaces()): string {
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

/** The text of GET /notification/info: address, host name and version, one per line. */
export function hostInfoText(version: string): string {
  return `IP Address: ${hostAddress()}\nHostname: ${hostname()}\nApplication Version: ${version}\n`;
}
