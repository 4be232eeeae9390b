import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from '../db/pool.js';
import type { NotificationClient } from '../notification-client.js';
import { claimDueMessages, isMarkedSent, markFailed, markSent, type ClaimedMessage } from './outbox-repository.js';

export interface OutboxLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface OutboxDispatcherOptions {
  pool: DatabasePool;
  client: NotificationClient;
  log: OutboxLog;
  pollIntervalMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  /** Must outlast one send, or a slow send could be claimed twice: see `leaseFor`. */
  leaseMs: number;
  batchSize?: number;
}

/**
 * How long a claim lasts: twice the longest a send can take (connect, then headers and body, each bounded by the
 * client's timeouts), and at least 30 s.
 */
export function leaseFor(connectTimeoutMs: number, responseTimeoutMs: number): number {
  return Math.max(30_000, 2 * (connectTimeoutMs + 2 * responseTimeoutMs));
}

const maxErrorSnippet = 200;

/**
 * Sends the outbox's pending messages through the notification client. It runs when kicked (right after a
 * commit) and every poll interval, so messages left by a failure or a restart go out too. A message is retried
 * with exponential backoff until it is accepted (2xx) or `maxAttempts` is reached. Delivery is at least once:
 * a message accepted by the notification service whose success could not be recorded while its claim held is sent
 * again once the claim ends.
 */
export class OutboxDispatcher {
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private cycle: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly aborter = new AbortController();

  constructor(private readonly options: OutboxDispatcherOptions) {
    this.leaseMs = options.leaseMs;
    this.batchSize = options.batchSize ?? 10;
  }

  /** Starts polling, with a first look at once for what an earlier process left. */
  start(): void {
    if (!this.stopped || this.aborter.signal.aborted) return;
    this.stopped = false;
    this.kick();
  }

  /** Runs a cycle now, or right after the running one; never throws. */
  kick(): void {
    if (this.stopped) return;
    if (this.cycle) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.cycle = this.runCycle().finally(() => {
      this.cycle = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      } else {
        this.schedule();
      }
    });
  }

  /** Stops polling, interrupts a send in flight and waits for the cycle to record it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.aborter.abort();
    while (this.cycle) await this.cycle;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.kick(), this.options.pollIntervalMs);
  }

  private async runCycle(): Promise<void> {
    try {
      while (!this.stopped) {
        const token = randomBytes(16).toString('hex');
        // Taken before the claim, so the claim is never thought to last longer than it does.
        const claimedAt = Date.now();
        const claimed = await claimDueMessages(this.options.pool, { limit: this.batchSize, leaseMs: this.leaseMs, token });
        if (claimed.length === 0) return;
        // The claimed batch goes out at once: a send mostly waits on SMTP, so one at a time capped a replica at ~9 e-mails/s.
        const outcomes = await Promise.allSettled(claimed.map((message) => this.deliver(message, token, claimedAt)));
        const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (err) {
      const { code, message } = err as { code?: string; message?: string };
      this.options.log.warn({ code, reason: message }, 'outbox: cannot read pending messages; will retry at the next poll');
    }
  }

  private retryDelay(attempt: number): number {
    const ceiling = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
    // Half fixed, half random: replicas that failed together do not retry together.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private async deliver(message: ClaimedMessage, token: string, claimedAt: number): Promise<void> {
    const attempt = message.attempts + 1;
    let failure: string;
    try {
      const response = await this.options.client.send(message.payload, this.aborter.signal);
      if (response.statusCode >= 200 && response.statusCode < 300) {
        await this.recordDelivery(message, token, claimedAt);
        return;
      }
      failure = `HTTP ${response.statusCode}: ${response.body.toString('utf8').slice(0, maxErrorSnippet)}`;
    } catch (err) {
      failure = this.aborter.signal.aborted ? 'interrupted by shutdown' : (err as Error).message;
    }
    const giveUp = attempt >= this.options.maxAttempts;
    // A send cut short by shutdown is due again at once, for whichever replica runs next.
    const retryInMs = this.aborter.signal.aborted ? 0 : this.retryDelay(attempt);
    await markFailed(this.options.pool, message.id, token, { error: failure, retryInMs, giveUp });
    const details = { outboxId: message.id, kind: message.kind, attempt, reason: failure };
    if (giveUp) this.options.log.error(details, 'outbox: giving up on message after the last attempt');
    else this.options.log.warn({ ...details, retryInMs: Math.round(retryInMs) }, 'outbox: delivery failed; will retry');
  }

  /**
   * Records an accepted send. A record that fails is retried, never turned into a failure record: the e-mail has
   * gone, and a failure record would make it due again at once. Retries go on while the claim holds; past it, the
   * row is left to its lease, whose end makes it due again (the duplicate that "at least once" allows).
   */
  private async recordDelivery(message: ClaimedMessage, token: string, claimedAt: number): Promise<void> {
    const details = { outboxId: message.id, kind: message.kind, attempt: message.attempts + 1 };
    for (let retry = 0; ; retry++) {
      try {
        // A failed record may have committed before its answer was lost; then the token is gone but the row is sent.
        const recorded = (await markSent(this.options.pool, message.id, token)) || (retry > 0 && (await isMarkedSent(this.options.pool, message.id)));
        if (recorded) this.options.log.info(details, 'outbox: message delivered');
        else this.options.log.warn(details, 'outbox: delivered after another dispatcher took the message over');
        return;
      } catch (err) {
        const { code, message: reason } = err as { code?: string; message?: string };
        const retryInMs = this.retryDelay(retry + 1);
        if (this.aborter.signal.aborted || Date.now() + retryInMs >= claimedAt + this.leaseMs) {
          this.options.log.error({ ...details, code, reason }, 'outbox: delivered, but cannot record it; it goes out again once its claim ends');
          return;
        }
        this.options.log.warn({ ...details, code, reason, retryInMs: Math.round(retryInMs) }, 'outbox: delivered, but cannot record it yet; will retry the record');
        // Shutdown cuts the wait short for one last try.
        await sleep(retryInMs, undefined, { signal: this.aborter.signal }).catch(() => undefined);
      }
    }
  }
}
