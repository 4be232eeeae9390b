export {
  checkCounts,
  maxReplicas,
  startLocalStack,
  type LocalStack,
  type LocalStackOptions,
  type ReplicaCounts,
  type ReplicaInfo,
  type Version,
} from './stack.js';
export { describeStack } from './table.js';
export type { Exit, OutputStream, Write } from './service-process.js';
export type { ReadyMessage } from './ready-message.js';
