// Container health probe. The slim Node image has no curl or wget, so node itself checks:
//   node healthcheck.mjs http://127.0.0.1:8096/notification/health/ready   healthy when the answer is 200
//   node healthcheck.mjs tcp://127.0.0.1:8096                              healthy when a connection opens
import { connect } from 'node:net';

const TIMEOUT_MS = 2000;
const target = process.argv[2] ?? '';

function fail(reason) {
  console.error(`unhealthy: ${target}: ${reason}`);
  process.exit(1);
}

function checkTcp(url) {
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.setTimeout(TIMEOUT_MS, () => fail('connect timed out'));
  socket.once('connect', () => {
    socket.destroy();
    process.exit(0);
  });
  socket.once('error', (err) => fail(err.message));
}

async function checkHttp(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await res.arrayBuffer();
    if (res.status !== 200) fail(`status ${res.status}`);
    process.exit(0);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
}

let url;
try {
  url = new URL(target);
} catch {
  fail('expected an http:// or tcp:// URL as the only argument');
}
if (url.protocol === 'tcp:') checkTcp(url);
else if (url.protocol === 'http:') await checkHttp(url);
else fail(`unsupported protocol ${url.protocol}`);
