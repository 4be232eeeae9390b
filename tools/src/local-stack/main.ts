import { parseStackArgs, usage, UsageError, type StackArgs } from './args.js';
import type { ReadyMessage } from './ready-message.js';
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

async function stop(): Promise<void> {
  process.stdout.write(`[stack] ${stopReason}: stopping\n`);
  await stack!.close();
  process.exit(0);
}

let stopRequestedAt = 0;

function requestStop(reason: string): void {
  if (stopReason !== undefined) {
    // One Ctrl-C can arrive twice: from the terminal and forwarded by a wrapper (npx, a package manager) that execs.
    if (Date.now() - stopRequestedAt < 1000) return;
    process.stderr.write(`[stack] ${reason} while stopping: killing every child now\n`);
    stack?.kill();
    // Children the stack does not know yet (still starting) see their IPC channel close and end themselves.
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
  stack = await startLocalStack({ v1: args.v1, v2: args.v2, usermgmtPort: args.port, notificationPort: args.notificationPort });
} catch (err) {
  process.stderr.write(`local-stack: cannot start: ${(err as Error).message}\n`);
  process.exit(1);
}

if (stopReason !== undefined) {
  await stop();
} else {
  process.stdout.write(`${describeStack(stack).join('\n')}\n`);
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
