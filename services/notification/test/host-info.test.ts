import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hostAddress } from '../src/host-info.js';

function iface(address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo {
  const common = { address, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', internal, cidr: null };
  return family === 'IPv4' ? { ...common, family } : { ...common, family, scopeid: 0 };
}

describe('hostAddress', () => {
  it('picks the first non-internal IPv4 address, skipping loopback and IPv6', () => {
    expect(
      hostAddress({
        lo: [iface('127.0.0.1', 'IPv4', true)],
        eth0: [iface('fe80::1', 'IPv6', false), iface('10.1.2.3', 'IPv4', false)],
        eth1: [iface('192.168.0.9', 'IPv4', false)],
      }),
    ).toBe('10.1.2.3');
  });

  it('falls back to 127.0.0.1 when there is no external IPv4 address', () => {
    expect(hostAddress({ lo: [iface('127.0.0.1', 'IPv4', true)], eth0: [iface('fe80::1', 'IPv6', false)] })).toBe('127.0.0.1');
    expect(hostAddress({})).toBe('127.0.0.1');
  });
});
