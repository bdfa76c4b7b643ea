import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { hashesEqual, SecretKeys } from '../crypto/secret-keys.js';
import { OtpAuthEvents } from '../events/otp-auth-event.js';
import { OTP_AUTH_CONFIG } from '../otp-auth.constants.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import { OtpRateLimiter } from '../rate-limits/otp-rate-limiter.js';
import { deriveStatelessCode, windowCounter } from './stateless-code.js';

/** Thrown by {@link StatelessLoginCodes} for every refused code (same message as stored mode). */
const INVALID = 'Invalid or expired code';

/** Codes one address can be issued per window (each single-use); bounds the verify work too. */
export const MAX_STATELESS_CODES_PER_WINDOW = 8;

/** A code issued in stateless mode. */
export interface IssuedStatelessCode {
  readonly code: string;
  /** When it stops being accepted: the end of its window plus `drift` windows. */
  readonly expiresAt: number;
  /** Undoes the issue after a failed delivery (frees the resend cooldown). */
  undo(): Promise<void>;
}

/** Raised when an address asks again inside the cooldown, or has used up this window's codes. */
export class StatelessCooldown extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('cooldown');
  }
}

/**
 * Login codes derived, not stored (`codeMode: 'stateless'`), as in the stateless OTP design, with
 * its gaps closed: each issue in a window takes the next of a few slots, so a second sign-in in
 * the same window gets a new code; a used code is marked and cannot be replayed; guesses are
 * capped per address and per window; the lifetime reported is the real one. Markers and counters
 * live in the rate-limit storage (atomic in memory and in Redis), so several instances need Redis.
 */
@Injectable()
export class StatelessLoginCodes {
  constructor(
    @Inject(OTP_AUTH_CONFIG) private readonly config: ResolvedOtpAuthOptions,
    private readonly keys: SecretKeys,
    private readonly limiter: OtpRateLimiter,
    private readonly events: OtpAuthEvents,
  ) {}

  private get windowMs(): number {
    return this.config.stateless.window * 1000;
  }

  /** How long markers of a window must outlive it: until its codes can no longer be accepted. */
  private get markerMs(): number {
    return this.windowMs * (this.config.stateless.drift + 2);
  }

  private slots(): number {
    const { resendCooldown, stateless } = this.config;
    const byCooldown =
      resendCooldown > 0 ? Math.ceil(stateless.window / resendCooldown) + 1 : MAX_STATELESS_CODES_PER_WINDOW;
    return Math.min(MAX_STATELESS_CODES_PER_WINDOW, byCooldown);
  }

  /** Issues the next code of the current window for an address. */
  async issue(email: string): Promise<IssuedStatelessCode> {
    const { resendCooldown, otpLength, stateless } = this.config;
    const storage = this.limiter.storage;
    const now = this.config.clock();
    const id = this.keys.identityKeyOf(email);
    const window = windowCounter(now, stateless.window);
    // The first request starts the cooldown; later ones inside it are refused (exact, shared).
    const cooldownKey = `sl:cool:${id}`;
    if (resendCooldown > 0 && (await storage.increment(cooldownKey, resendCooldown * 1000, now)) > 1) {
      throw new StatelessCooldown(resendCooldown);
    }
    const slot = (await storage.increment(`sl:slot:${id}:${window}`, this.markerMs, now)) - 1;
    if (slot >= this.slots()) {
      throw new StatelessCooldown(Math.max(1, Math.ceil(((window + 1) * this.windowMs - now) / 1000)));
    }
    return {
      code: deriveStatelessCode(this.keys.statelessCode, 'login', email, window * 16 + slot, otpLength),
      expiresAt: (window + 1 + stateless.drift) * this.windowMs,
      undo: async () => {
        if (resendCooldown > 0) await storage.reset([cooldownKey]);
      },
    };
  }

  /**
   * Accepts a code of this window or of the `drift` windows before it, once. Every refusal throws
   * the same 401. Each guess is counted before it is evaluated, so parallel guesses cannot exceed
   * the caps (per address across windows, and `maxAttempts` per window).
   */
  async check(email: string, code: string): Promise<void> {
    const { maxAttempts, addressFailureLimit, otpLength, stateless } = this.config;
    const storage = this.limiter.storage;
    const now = this.config.clock();
    const id = this.keys.identityKeyOf(email);
    const window = windowCounter(now, stateless.window);
    const failures = `sl:fail:${id}`;
    // Guesses per window are an exact count; the per-address cap across windows slides.
    const tries = await storage.increment(`sl:try:${id}:${window}`, this.markerMs, now);
    const reserved =
      tries <= maxAttempts &&
      (
        await storage.consume(
          [{ key: failures, limit: addressFailureLimit.max, windowMs: addressFailureLimit.window * 1000 }],
          now,
        )
      ).allowed;
    if (!reserved) {
      this.events.emit({ type: 'code.locked_out', email });
      throw new UnauthorizedException(INVALID);
    }
    let match: { window: number; slot: number } | undefined;
    // Only codes that were issued: a slot counts once request-otp has taken it.
    for (let w = window - stateless.drift; w <= window; w += 1) {
      const issued = Math.min(this.slots(), await storage.read(`sl:slot:${id}:${w}`, now));
      // Compare against every issued candidate without stopping early: time does not tell which matched.
      for (let slot = 0; slot < issued; slot += 1) {
        const candidate = deriveStatelessCode(this.keys.statelessCode, 'login', email, w * 16 + slot, otpLength);
        // Constant time for any input, also a code with multi-byte characters (no RangeError).
        if (hashesEqual(candidate, code) && !match) match = { window: w, slot };
      }
    }
    if (!match) {
      this.events.emit({ type: 'code.failed', email, reason: 'wrong' });
      throw new UnauthorizedException(INVALID);
    }
    if ((await storage.increment(`sl:used:${id}:${match.window}:${match.slot}`, this.markerMs, now)) > 1) {
      this.events.emit({ type: 'code.failed', email, reason: 'already_used' });
      throw new UnauthorizedException(INVALID);
    }
    await storage.reset([failures]);
  }
}
