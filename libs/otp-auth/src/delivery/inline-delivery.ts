import {
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import { OTP_DELIVERY_CONFIG, type DeliveryConfig } from './delivery.options.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CodeDelivery, CodeMessage } from './code-delivery.js';
import { OTP_SENDER, withoutCode, type OtpSender } from './otp-sender.interface.js';
import { NoRecipientError, PermanentDeliveryError } from '../errors.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/** What became of one attempt. */
type Outcome = 'sent' | 'no_recipient' | 'failed';

/**
 * Delivery on the request path (`delivery.mode: 'inline'`).
 *
 * When a response could differ by whether the address gets a message (invite-only, or a sender
 * that may find no recipient), every request is answered at one fixed time,
 * `delivery.responseDeadline` after it began: a message being delivered is waited for up to that
 * deadline and then continues in the background; an address that gets none waits the same. A
 * padding derived from past deliveries (a moving average) cannot do this: its spread is not the
 * spread of real deliveries, so the latency distributions still differ. Otherwise (every address
 * gets a message), the request waits for the sender and a failure answers 503.
 */
@Injectable()
export class InlineDelivery implements CodeDelivery, BeforeApplicationShutdown {
  private readonly logger = new Logger('OtpAuth');
  /** Deliveries still running after their response went out. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly uniformByConfig: boolean;
  /** Set by the first "no recipient" seen while uniform timing was off by default (see {@link deliver}). */
  private uniformSinceNoRecipient = false;

  constructor(
    @Inject(OTP_DELIVERY_CONFIG) private readonly config: DeliveryConfig,
    @Inject(OTP_SENDER) private readonly sender: OtpSender,
    private readonly events: OtpAuthEvents,
  ) {
    const setting = config.delivery.uniformTiming;
    this.uniformByConfig = setting === 'auto' ? !config.autoCreateUser || sender.resolvesRecipients === true : setting;
  }

  /** Whether requests are answered at the fixed deadline. */
  get uniformTiming(): boolean {
    return this.uniformByConfig || this.uniformSinceNoRecipient;
  }

  /** {@link CodeDelivery}: inline delivery can always take a message. */
  assertReady(): void {}

  /**
   * Delivers one code, or none (`message` null: an unknown address of an invite-only app).
   * @param startedAt - `performance.now()` when the request began: the deadline counts from there,
   *   so the user lookup and the store writes are inside it too.
   * @throws ServiceUnavailableException when delivery failed and timing is not uniform.
   */
  async deliver(message: CodeMessage | null, startedAt: number): Promise<void> {
    if (this.uniformTiming) {
      if (message) this.inBackground(this.attempt(message));
      await this.untilDeadline(startedAt);
      return;
    }
    // Only with `uniformTiming: false` and invite-only: the app chose speed over hiding who is known.
    if (!message) return;
    const outcome = await this.attempt(message);
    if (outcome === 'failed')
      throw new ServiceUnavailableException('The code could not be sent. Please try again later.');
    if (outcome === 'no_recipient' && this.config.delivery.uniformTiming === 'auto') {
      // A `sendOtp` function that resolves recipients without saying so: from now on answer at the
      // deadline, this request included, instead of answering "nobody there" faster than a delivery.
      this.uniformSinceNoRecipient = true;
      this.logger.warn(
        'The sender found no recipient for an address, so response times could tell addresses apart: ' +
          'request-otp is now answered at `delivery.responseDeadline` on this instance. ' +
          'Set `delivery.uniformTiming: true` (or `delivery.mode: "outbox"`) to have that from startup.',
      );
      await this.untilDeadline(startedAt);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    // Before the store closes: background deliveries may still withdraw their code.
    if (this.inFlight.size === 0) return;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      sleep(this.config.delivery.shutdownGraceMs, undefined, { ref: false }),
    ]);
  }

  private async untilDeadline(startedAt: number): Promise<void> {
    const remaining = startedAt + this.config.delivery.responseDeadline - performance.now();
    if (remaining > 0) await sleep(remaining);
  }

  private inBackground(attempt: Promise<Outcome>): void {
    const tracked = attempt.catch(() => 'failed');
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** One try, reported; a failed delivery withdraws its code. Never rejects. */
  private async attempt(message: CodeMessage): Promise<Outcome> {
    const { email, code, context } = message;
    try {
      await this.sender.send(email, code, context);
    } catch (error) {
      if (error instanceof NoRecipientError) {
        // Not a failure: the code stays (unknown to anyone), so the cooldown answers as for anyone.
        this.events.emit({ type: 'code.not_sent', email, purpose: context.purpose, reason: error.reason });
        return 'no_recipient';
      }
      const reason = withoutCode((error as Error)?.message ?? 'unknown error', code);
      this.logger.error(`Code delivery failed: ${reason}`);
      this.events.emit({
        type: 'code.delivery_failed',
        email,
        purpose: context.purpose,
        permanent: error instanceof PermanentDeliveryError,
        error: reason,
      });
      // After the report: a failing withdrawal (database down too) must not hide the delivery failure.
      await message.withdraw().catch((withdrawError: unknown) => {
        this.logger.error(`Could not withdraw an undelivered code: ${(withdrawError as Error)?.message}`);
      });
      return 'failed';
    }
    this.events.emit({ type: 'code.sent', email, purpose: context.purpose, channel: 'inline' });
    return 'sent';
  }
}
