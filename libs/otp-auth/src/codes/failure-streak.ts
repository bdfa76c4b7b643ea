import { Inject, Injectable, Logger } from '@nestjs/common';
import { OTP_CODE_CONFIG, type CodeConfig } from './code.options.js';
import { SecretKeys } from '../crypto/secret-keys.js';
import { OtpRateLimiter } from '../rate-limits/otp-rate-limiter.js';
import { RateLimitUnavailableError } from '../errors.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/** The outcome of {@link FailureStreak.check}. */
export interface StreakCheck {
  readonly allowed: boolean;
  readonly failures: number;
}

/** The longest wait between two guesses once the back-off has started. */
const MAX_BACKOFF_MS = 3_600_000;

/**
 * Wrong codes in a row per address (NIST SP 800-63B 5.2.2), on top of the store's short-window
 * failure cap: the short cap resets every window, this count only on a code that is accepted
 * (or after `consecutiveFailures.window`). Past `backoffAfter` failures each guess waits twice
 * as long as the previous one; at `max` the address gets no more guesses.
 *
 * It lives in the rate-limit storage (memory or Redis), never in the database, so it adds no
 * statement to a sign-in. Reads and bumps are not atomic with the guess itself; parallel
 * guesses can pass a limit by the number in flight, which the store's atomic cap still bounds.
 */
@Injectable()
export class FailureStreak {
  private readonly logger = new Logger('OtpAuth');
  private lastWarning = -Infinity;

  constructor(
    @Inject(OTP_CODE_CONFIG) private readonly config: CodeConfig,
    private readonly keys: SecretKeys,
    private readonly events: OtpAuthEvents,
    private readonly limiter: OtpRateLimiter,
  ) {}

  /**
   * Whether the address may make a guess now, and its current count (so that a success needs to
   * clear something only when there is something to clear).
   */
  async check(email: string): Promise<StreakCheck> {
    const { max, backoffAfter } = this.config.consecutiveFailures;
    const now = this.config.clock();
    return this.tolerant({ allowed: true, failures: 0 }, async () => {
      const failures = await this.limiter.storage.read(this.streakKey(email), now);
      if (failures >= max) return { allowed: false, failures };
      if (failures === 0 || failures < backoffAfter) return { allowed: true, failures };
      return { allowed: (await this.limiter.storage.read(this.backoffKey(email), now)) === 0, failures };
    });
  }

  /** Counts a wrong code; starts the wait before the next guess; reports the limit once. */
  async recordFailure(email: string): Promise<void> {
    const { max, backoffAfter, window } = this.config.consecutiveFailures;
    const now = this.config.clock();
    await this.tolerant(undefined, async () => {
      const failures = await this.limiter.storage.increment(this.streakKey(email), window * 1000, now);
      if (failures === max) this.events.emit({ type: 'code.failure_limit_reached', email, failures });
      if (failures >= backoffAfter && failures < max) {
        const waitMs = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(30, failures - backoffAfter));
        await this.limiter.storage.increment(this.backoffKey(email), waitMs, now);
      }
    });
  }

  /** Clears the count after an accepted code (or by an operator, through `OtpAuthService`). */
  async reset(email: string): Promise<void> {
    await this.tolerant(undefined, () => this.limiter.storage.reset([this.streakKey(email), this.backoffKey(email)]));
  }

  private streakKey(email: string): string {
    return `fs:count:${this.keys.identityKeyOf(email)}`;
  }

  private backoffKey(email: string): string {
    return `fs:wait:${this.keys.identityKeyOf(email)}`;
  }

  /**
   * Counter storage down: under `'fail-closed'` the sign-in answers 503 like every other counter;
   * otherwise the streak is skipped meanwhile (the store's own failure cap still holds), so a
   * Redis outage does not stop stored-code sign-ins.
   */
  private async tolerant<T>(fallback: T, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof RateLimitUnavailableError) || this.config.rateLimits.onStorageError === 'fail-closed') {
        throw error;
      }
      if (performance.now() - this.lastWarning >= 10_000) {
        this.lastWarning = performance.now();
        this.logger.warn('Rate-limit storage unavailable: consecutive-failure counting is paused meanwhile.');
      }
      return fallback;
    }
  }
}
