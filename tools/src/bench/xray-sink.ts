import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { SinkMessage, SinkReport } from './xray-sink-protocol.js';

/**
 * Plays the X-Ray daemon in a process of its own: it counts every datagram and parses one in `parseEvery`, so the
 * bench sees that each request was traced without taking much CPU from the services under load.
 */
const parseEvery = 25;
const socket = dgram.createSocket('udp4');
const emptyReport = (): SinkReport => ({ datagrams: 0, bytes: 0, dropped: 0, parsed: 0, malformed: 0, names: {} });
let report = emptyReport();

/**
 * How many datagrams the kernel has dropped for this socket since it was bound, its receive buffer full: the last
 * column of its line in /proc/net/udp (local address 127.0.0.1:<port in hex>, not connected). Linux only.
 */
function socketDrops(): number {
  let table: string;
  try {
    table = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return 0;
  }
  const local = `0100007F:${socket.address().port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 `;
  const line = table.split('\n').find((row) => row.includes(local));
  return Number(line?.trim().split(/\s+/).at(-1) ?? 0);
}
let dropsAtReset = 0;

socket.on('message', (datagram) => {
  report.datagrams += 1;
  report.bytes += datagram.length;
  if (report.datagrams % parseEvery !== 0) return;
  const newline = datagram.indexOf(10);
  try {
    const header = JSON.parse(datagram.subarray(0, newline).toString('utf8')) as { format?: string };
    const segment = JSON.parse(datagram.subarray(newline + 1).toString('utf8')) as { name?: string; trace_id?: string };
    if (newline < 0 || header.format !== 'json' || !segment.trace_id) throw new Error('not a segment document');
    report.parsed += 1;
    const name = segment.name ?? '(unnamed)';
    report.names[name] = (report.names[name] ?? 0) + 1;
  } catch {
    report.malformed += 1;
  }
});

process.on('message', (message: SinkMessage) => {
  if (message.type === 'report') {
    const drops = socketDrops();
    process.send?.({ type: 'report', report: { ...report, dropped: drops - dropsAtReset } });
    if (message.reset) {
      report = emptyReport();
      dropsAtReset = drops;
    }
  }
});
process.on('disconnect', () => socket.close());

socket.bind(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: socket.address().port });
});
