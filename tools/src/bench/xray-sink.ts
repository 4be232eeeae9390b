import dgram from 'node:dgram';
import type { SinkMessage, SinkReport } from './xray-sink-protocol.js';

/**
 * Plays the X-Ray daemon in a process of its own: it counts every datagram and parses one in `parseEvery`, so the
 * bench sees that each request was traced without taking much CPU from the services under load.
 */
const parseEvery = 25;
const socket = dgram.createSocket('udp4');
let report: SinkReport = { datagrams: 0, bytes: 0, parsed: 0, malformed: 0, names: {} };

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
    process.send?.({ type: 'report', report });
    if (message.reset) report = { datagrams: 0, bytes: 0, parsed: 0, malformed: 0, names: {} };
  }
});
process.on('disconnect', () => socket.close());

socket.bind(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: socket.address().port });
});
