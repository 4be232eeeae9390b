import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface SelfSignedCertificate {
  /** PEM private key. */
  key: string;
  /** PEM certificate; give it to a client as its `ca` to trust the server. */
  cert: string;
}

const run = promisify(execFile);

/**
 * A throw-away self-signed certificate for 127.0.0.1 and localhost, made by the openssl command line
 * (present wherever Node's TLS is), so a test server can offer real TLS and a client can verify it.
 */
export async function createSelfSignedCertificate(commonName = 'localhost'): Promise<SelfSignedCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-cert-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '1',
      '-subj', `/CN=${commonName}`,
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', keyPath, '-out', certPath,
    ]);
    return { key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
