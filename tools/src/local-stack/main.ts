import { parseStackArgs, usage, UsageError, type StackArgs } from './args.js';
import type { ReadyMessage } from './ready-message.js';
import type { OutputStream } from './service-process.js';
import { startLocalStack, type LocalStack } from './stack.js';
import { describeStack } from './table.js';

function readArgs(): StackArgs {
  try {
    const args = parseStackArgs(process.argv.slice(2));
    if (args !== 'help') return args;
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`local-stack: ${err.message}\n\n${usage}\n`);
    process.exit(2);
  }
}

const args = readArgs();
let stack: LocalStack | undefined;
let stopReason: string | undefined;

/**
 * A write error on stdout or stderr (EPIPE: `npm start | head -1` has read enough and closed the pipe; EIO: the
 * terminal is gone) asks the stack to stop, as SIGHUP does: it writes nothing more to that stream, stops every child
 * as on Ctrl-C and exits 0. Left unhandled, the 'error' would kill the stack at once, children still starting included.
 */
const closedOutputs = new Set<OutputStream>();

function write(line: string, stream: OutputStream): void {
  if (!closedOutputs.has(stream)) process[stream].write(`${line}\n`);
}

for (const stream of ['stdout', 'stderr'] as const) {
  process[stream].on('error', (err: NodeJS.ErrnoException) => {
    closedOutputs.add(stream);
    requestStop(`${stream} closed (${err.code ?? err.message})`, false);
  });
}

async function stop(): Promise<void> {
  write(`[stack] ${stopReason}: stopping`, closedOutputs.has('stdout') ? 'stderr' : 'stdout');
  await stack!.close();
  process.exit(0);
}

let stopRequestedAt = 0;

/** `escalate`: a second request more than a second after the first kills every child (a second Ctrl-C). */
function requestStop(reason: string, escalate = true): void {
  if (stopReason !== undefined) {
    if (!escalate) return;
    // One Ctrl-C can arrive twice: from the terminal and forwarded by a wrapper (npx, a package manager) that execs.
    if (Date.now() - stopRequestedAt < 1000) return;
    write(`[stack] ${reason} while stopping: killing every child now`, 'stderr');
    stack?.kill();
    // Children the stack does not know yet (still starting) see the stack gone and end themselves (parent-watch.ts).
    process.exit(1);
  }
  stopReason = reason;
  stopRequestedAt = Date.now();
  // While starting, the stop waits until the start has finished (or failed).
  if (stack) void stop();
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => requestStop(signal));
// A parent that started the stack with IPC and then went away (a killed test runner) leaves no stack behind.
if (process.send) process.on('disconnect', () => requestStop('parent disconnected'));

try {
  stack = await startLocalStack({ v1: args.v1, v2: args.v2, usermgmtPort: args.port, notificationPort: args.notificationPort, write });
} catch (err) {
  write(`local-stack: cannot start: ${(err as Error).message}`, 'stderr');
  process.exit(1);
}

if (stopReason !== undefined) {
  await stop();
} else {
  write(describeStack(stack).join('\n'), 'stdout');
  if (process.send) {
    const ready: ReadyMessage = {
      type: 'ready',
      usermgmtPort: stack.usermgmtPort,
      usermgmtPid: stack.usermgmtPid,
      notificationPort: stack.notificationPort,
      mailPort: stack.mail.port,
      replicas: stack.replicas(),
    };
    process.send(ready);
  }
}
