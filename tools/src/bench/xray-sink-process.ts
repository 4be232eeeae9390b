import { entryPath, forkEntry, stopChild, waitForMessage } from './child-processes.js';
import type { SinkReply, SinkReport } from './xray-sink-protocol.js';

export interface XraySink {
  /** `127.0.0.1:<port>`, for AWS_XRAY_DAEMON_ADDRESS. */
  address: string;
  pid: number;
  /** What arrived since the last reset. */
  report(reset: boolean): Promise<SinkReport>;
  close(): Promise<void>;
}

export async function startXraySink(): Promise<XraySink> {
  const child = forkEntry(entryPath('xray-sink'), process.env);
  const port = await waitForMessage(
    child,
    (m) => ((m as SinkReply).type === 'listening' ? (m as Extract<SinkReply, { type: 'listening' }>).port : undefined),
    10_000,
    'X-Ray sink',
  );
  return {
    address: `127.0.0.1:${port}`,
    pid: child.pid as number,
    async report(reset) {
      const answer = waitForMessage(
        child,
        (m) => ((m as SinkReply).type === 'report' ? (m as Extract<SinkReply, { type: 'report' }>).report : undefined),
        10_000,
        'X-Ray sink report',
      );
      child.send({ type: 'report', reset });
      return answer;
    },
    close: () => stopChild(child),
  };
}
