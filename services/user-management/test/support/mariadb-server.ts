import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { closedPort } from './helpers.js';

const run = promisify(execFile);

function findBinary(name: string): string | undefined {
  return ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin'].map((dir) => join(dir, name)).find((path) => existsSync(path));
}

const mariadbd = findBinary('mariadbd');
const installDb = findBinary('mariadb-install-db');

/** Whether this machine can run a private MariaDB server for a test. */
export const canRunMariadb = mariadbd !== undefined && installDb !== undefined;

export interface PrivateMariadb {
  port: number;
  /** Stops the server (SIGTERM) and waits for it to exit; the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data, resolving once it answers. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
}

/**
 * A MariaDB server of the test's own, in a temporary directory on a free port, without grant tables (any user,
 * no password), so a test can stop and restart the database under a running service.
 */
export async function startPrivateMariadb(): Promise<PrivateMariadb> {
  if (!mariadbd || !installDb) throw new Error('mariadbd and mariadb-install-db are needed for this test');
  const dir = await mkdtemp(join(tmpdir(), 'um-mariadb-'));
  const datadir = join(dir, 'data');
  const small = ['--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M'];
  await run(installDb, ['--no-defaults', `--datadir=${datadir}`, '--skip-test-db', '--auth-root-authentication-method=normal', ...small]);
  const port = await closedPort();
  let child: ChildProcess | undefined;

  async function answers(): Promise<boolean> {
    try {
      const connection = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 });
      await connection.end();
      return true;
    } catch {
      return false;
    }
  }

  const server: PrivateMariadb = {
    port,
    async start() {
      const args = [
        '--no-defaults',
        `--datadir=${datadir}`,
        `--socket=${join(dir, 'mysqld.sock')}`,
        `--pid-file=${join(dir, 'mysqld.pid')}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        '--skip-grant-tables',
        '--skip-log-bin',
        '--user=root',
        ...small,
      ];
      child = spawn(mariadbd!, args, { stdio: 'ignore' });
      const started = child;
      const deadline = Date.now() + 30_000;
      while (!(await answers())) {
        if (started.exitCode !== null) throw new Error(`mariadbd exited with ${started.exitCode}`);
        if (Date.now() > deadline) throw new Error('mariadbd did not answer within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = once(running, 'exit');
      running.kill('SIGTERM');
      await exited;
    },
    async destroy() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
