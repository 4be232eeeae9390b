import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Every line of output is appended here, so a failure can be read in full afterwards. */
  logFile?: string;
}

/** Runs a command without a shell; resolves with its exit code and output (a missing program is code 127). */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const { env = process.env, timeoutMs = 600_000, logFile } = options;
  if (logFile) appendFileSync(logFile, `\n$ ${[command, ...args].join(' ')}\n`);
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (logFile) appendFileSync(logFile, chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (logFile) appendFileSync(logFile, chunk);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: err.code === 'ENOENT' ? 127 : 1, stdout, stderr: stderr + err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/**
 * The compose command: `COMPOSE` when set (e.g. "docker-compose"), else `docker compose` (v2) when the plugin
 * answers, else `docker-compose` (1.29). Both read the same file; only the container names differ, so callers
 * find containers by label, never by name.
 */
export async function detectCompose(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const chosen = env.COMPOSE?.trim();
  if (chosen) return chosen.split(/\s+/);
  if ((await run('docker', ['compose', 'version'], { env, timeoutMs: 30_000 })).code === 0) return ['docker', 'compose'];
  if ((await run('docker-compose', ['version'], { env, timeoutMs: 30_000 })).code === 0) return ['docker-compose'];
  throw new Error('neither `docker compose` nor `docker-compose` answers (set COMPOSE to the command to use)');
}

export interface ProjectContainer {
  id: string;
  service: string;
  /** `docker ps` status, e.g. "Up 5 seconds (healthy)" or "Exited (1) 2 seconds ago". */
  status: string;
}

export class ComposeProject {
  constructor(
    readonly compose: readonly string[],
    readonly name: string,
    readonly file: string,
    readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}

  /** Runs `<compose> -p NAME -f FILE ARGS...` and throws with the output's tail when it fails. */
  async run(args: readonly string[], timeoutMs = 1_800_000): Promise<CommandResult> {
    const [command = 'docker-compose', ...base] = this.compose;
    const result = await run(command, [...base, '-p', this.name, '-f', this.file, ...args], { env: this.env, timeoutMs, logFile: this.logFile });
    if (result.code !== 0) {
      throw new Error(`${this.compose.join(' ')} ${args.join(' ')} exited ${result.code}:\n${tail(result.stderr || result.stdout, 30)}`);
    }
    return result;
  }

  /** Every container of the project, running or not, found by the label both compose versions set. */
  async containers(): Promise<ProjectContainer[]> {
    const result = await docker(
      ['ps', '-a', '--filter', `label=com.docker.compose.project=${this.name}`, '--format', '{{.ID}}\t{{.Label "com.docker.compose.service"}}\t{{.Status}}'],
      this.env,
    );
    return result.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [id = '', service = '', status = ''] = line.split('\t');
        return { id, service, status };
      });
  }

  /** Names of the project's networks and volumes still present (by label and by the `<project>_` name prefix). */
  async leftovers(): Promise<string[]> {
    const found = new Set<string>();
    for (const kind of ['network', 'volume'] as const) {
      const byLabel = await docker([kind, 'ls', '-q', '--filter', `label=com.docker.compose.project=${this.name}`], this.env);
      const byName = await docker([kind, 'ls', '-q', '--filter', `name=${this.name}_`], this.env);
      for (const id of `${byLabel.stdout}\n${byName.stdout}`.split('\n')) if (id.trim()) found.add(`${kind} ${id.trim()}`);
    }
    for (const container of await this.containers()) found.add(`container ${container.id} (${container.service})`);
    return [...found];
  }
}

export async function docker(args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<CommandResult> {
  const result = await run('docker', args, { env, timeoutMs });
  if (result.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${tail(result.stderr, 5)}`);
  return result;
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
