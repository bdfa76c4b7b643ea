import { Inject, Injectable, Logger, ServiceUnavailableException, type OnApplicationShutdown } from '@nestjs/common';
import { OTP_DELIVERY_CONFIG, type DeliveryConfig } from './delivery.options.js';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OTP_SENDER, withoutCode, type OtpSender } from './otp-sender.interface.js';
import { NoRecipientError, PermanentDeliveryError } from '../errors.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';
import type { CodeDelivery, CodeMessage } from './code-delivery.js';

/**
 * Sends codes off the request path (`delivery: { mode: 'outbox' }`): `request-otp` answers at once,
 * whatever the mail server's speed, so response time says nothing about the address. Transient
 * failures are retried with exponential backoff; a permanent failure, or the last retry, withdraws
 * the code and emits `code.delivery_failed`.
 *
 * The queue lives in this process's memory on purpose: a plaintext code never touches a database
 * or a broker. The cost is that a crash loses what is queued; the user asks for another code.
 */
@Injectable()
export class CodeOutbox implements CodeDelivery, OnApplicationShutdown {
  private readonly logger = new Logger('OtpAuth');
  private readonly queue: CodeMessage[] = [];
  private running = 0;
  private idle: (() => void) | undefined;
  private stopping = false;

  constructor(
    @Inject(OTP_DELIVERY_CONFIG) private readonly config: DeliveryConfig,
    @Inject(OTP_SENDER) private readonly sender: OtpSender,
    private readonly events: OtpAuthEvents,
  ) {}

  /** Messages queued or being sent. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /**
   * Queues a message, giving its context a `deliveryId` when it has none. Throws 503 when the
   * queue is full (the caller withdraws the code), so a stalled mail server turns into
   * back-pressure rather than unbounded memory.
   */
  enqueue(message: CodeMessage): void {
    this.assertCapacity();
    // Fixed here, once per message, so every retry below carries the same id (receivers de-duplicate on it).
    const context =
      message.context.deliveryId === undefined ? { ...message.context, deliveryId: randomUUID() } : message.context;
    this.queue.push({ ...message, context });
    this.pump();
  }

  /**
   * Throws 503 when no message can be queued. Called for every address, mail or not, so a full
   * queue answers known and unknown addresses alike.
   */
  assertCapacity(): void {
    if (this.stopping || this.pending >= this.config.delivery.maxQueue) {
      throw new ServiceUnavailableException('Too many codes are waiting to be sent. Please try again shortly.');
    }
  }

  /** {@link CodeDelivery}: a full queue refuses before a code is issued. */
  assertReady(): void {
    this.assertCapacity();
  }

  /** {@link CodeDelivery}: queues the message and answers at once; a refused one is withdrawn. */
  async deliver(message: CodeMessage | null): Promise<void> {
    if (!message) return;
    try {
      this.enqueue(message);
    } catch (error) {
      await message.withdraw();
      throw error;
    }
  }

  /** Resolves once everything queued has been sent or given up on (for tests and shutdown). */
  async drain(): Promise<void> {
    while (this.pending > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    // Give queued messages a bounded chance to go out before the process exits.
    await Promise.race([this.drain(), sleep(this.config.delivery.shutdownGraceMs, undefined, { ref: false })]);
  }

  private pump(): void {
    while (this.running < this.config.delivery.concurrency && this.queue.length > 0) {
      const message = this.queue.shift()!;
      this.running += 1;
      void this.send(message).finally(() => {
        this.running -= 1;
        if (this.pending === 0) this.idle?.();
        this.pump();
      });
    }
  }

  private async send(message: CodeMessage): Promise<void> {
    const { retries, retryDelayMs } = this.config.delivery;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.sender.send(message.email, message.code, message.context);
        this.events.emit({
          type: 'code.sent',
          email: message.email,
          purpose: message.context.purpose,
          channel: 'outbox',
        });
        return;
      } catch (error) {
        if (error instanceof NoRecipientError) {
          // Not a failure: no retry, and the code stays, as for an address that is never queued.
          this.events.emit({
            type: 'code.not_sent',
            email: message.email,
            purpose: message.context.purpose,
            reason: error.reason,
          });
          return;
        }
        const permanent = error instanceof PermanentDeliveryError;
        if (!permanent && attempt < retries) {
          // Exponential backoff with jitter, so retries of many messages do not arrive in step.
          await sleep(retryDelayMs * 2 ** attempt * (0.5 + Math.random() / 2));
          continue;
        }
        // A provider may echo the request: the code must not reach logs or events.
        const reason = withoutCode((error as Error)?.message ?? 'unknown error', message.code);
        this.logger.error(`Code delivery failed after ${attempt + 1} attempt(s): ${reason}`);
        try {
          await message.withdraw();
        } catch (withdrawError) {
          this.logger.error(`Could not withdraw an undelivered code: ${(withdrawError as Error).message}`);
        }
        this.events.emit({
          type: 'code.delivery_failed',
          email: message.email,
          purpose: message.context.purpose,
          permanent,
          error: reason,
        });
        return;
      }
    }
  }
}
