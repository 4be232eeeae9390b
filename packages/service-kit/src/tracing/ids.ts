import { randomFillSync } from 'node:crypto';

/**
 * Random bytes drawn from the system a few kilobytes at a time: one `randomFillSync` call costs about 2 µs on a
 * virtual machine whatever its size, as much as everything else a traced request spends on its ids.
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const hex = randomPool.toString('hex', randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

/** `1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`, the X-Ray trace id format. */
export function newTraceId(): string {
  const seconds = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return `1-${seconds}-${randomHex(12)}`;
}

/** 64 random bits as 16 hex digits: the id of a segment, a subsegment or a recorded exception. */
export function newEntityId(): string {
  return randomHex(8);
}

const traceIdPattern = /^1-[0-9a-f]{8}-[0-9a-f]{24}$/;

/** The caller's trace id when it is a well-formed X-Ray one; anything else starts a new trace, as the SDK does. */
export function validTraceId(root: string | undefined): string | undefined {
  return root !== undefined && traceIdPattern.test(root) ? root : undefined;
}

const entityIdPattern = /^[0-9a-f]{16}$/;

/** The caller's parent id when it is a well-formed segment id; X-Ray drops a segment whose parent_id is not. */
export function validEntityId(id: string | undefined): string | undefined {
  return id !== undefined && entityIdPattern.test(id) ? id : undefined;
}
