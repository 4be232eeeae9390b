import type { ReplicaInfo } from './stack.js';

/** What the CLI sends a parent that started it with an IPC channel (tests, measurements), once everything answers. */
export interface ReadyMessage {
  type: 'ready';
  usermgmtPort: number;
  usermgmtPid: number;
  notificationPort: number;
  /** The SMTP port the replicas send to (the stack's sink, or AWS_MAIL_SERVER_PORT). */
  mailPort: number;
  replicas: ReplicaInfo[];
}
