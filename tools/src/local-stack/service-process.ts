import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export type OutputStream = 'stdout' | 'stderr';
export type Write = (line: string, stream: OutputStream) => void;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcessOptions {
  /** Prefix of its log lines, e.g. `v1-1`. */
  name: string;
  script: string;
  env: NodeJS.ProcessEnv;
  /** The parent-watch preload, so the process stops when the stack dies. */
  preload: string;
  write: Write;
  /** How long it may take to send `{type:'listening'}` (user management first waits for the database). */
  listenTimeoutMs: number;
  /** Called when it exits without having been asked to stop. */
  onUnexpectedExit?: (exit: Exit) => void;
}

export interface ServiceProcess {
  name: string;
  pid: number;
  port: number;
  readonly exited: Promise<Exit>;
  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  stop(graceMs: number): Promise<Exit>;
  /** SIGKILL at once. */
  kill(): void;
}

interface ListeningMessage {
  type: 'listening';
  port: number;
}

function isListening(message: unknown): message is ListeningMessage {
  const candidate = message as Partial<ListeningMessage> | null;
  return candidate?.type === 'listening' && typeof candidate.port === 'number';
}

export function describeExit({ code, signal }: Exit): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/**
 * Starts `node <script>` with an IPC channel and resolves once it reports the port it listens on. It runs in its
 * own process group, so a Ctrl-C in the terminal reaches only the stack, which then stops it with one SIGTERM
 * (a second signal would make the service give up its graceful shutdown).
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const child: ChildProcess = fork(options.script, [], {
    // The preload's parent watch compares its parent pid with this one (see parent-watch.ts).
    env: { ...options.env, LOCAL_STACK_PID: String(process.pid) },
    execArgv: ['--import', pathToFileURL(options.preload).href],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  for (const stream of ['stdout', 'stderr'] as const) {
    createInterface({ input: child[stream]!, crlfDelay: Infinity }).on('line', (line) => options.write(`[${options.name}] ${line}`, stream));
  }
  let stopping = false;
  // 'close' rather than 'exit': its last log lines have been read by then.
  const exited: Promise<Exit> = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  child.on('error', () => {});

  const listening = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.name} did not report its port within ${options.listenTimeoutMs} ms`)), options.listenTimeoutMs);
    child.on('message', (message) => {
      if (isListening(message)) {
        clearTimeout(timer);
        resolve(message.port);
      }
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} ${describeExit(exit)} before listening (its log is above)`));
    });
  });

  let port: number;
  try {
    port = await listening;
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }

  void exited.then((exit) => {
    if (!stopping) options.onUnexpectedExit?.(exit);
  });

  return {
    name: options.name,
    pid: child.pid!,
    port,
    exited,
    async stop(graceMs) {
      if (stopping) return exited;
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        void exited.finally(() => clearTimeout(timer));
      }
      return exited;
    },
    kill() {
      stopping = true;
      child.kill('SIGKILL');
    },
  };
}
