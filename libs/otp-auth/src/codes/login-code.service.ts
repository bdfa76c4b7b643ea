import { Inject, Injectable, Logger, UnauthorizedException } from '@nestjs/common';
import { OTP_CODE_CONFIG, type CodeConfig } from './code.options.js';
import { randomUUID } from 'node:crypto';
import { hashesEqual, SecretKeys } from '../crypto/secret-keys.js';
import type { OtpDeliveryContext } from '../delivery/otp-sender.interface.js';
import { OTP_CODE_DELIVERY, type CodeDelivery, type CodeMessage } from '../delivery/code-delivery.js';
import { RecipientLimit } from '../delivery/recipient-limit.js';
import { OtpRateLimiter } from '../rate-limits/otp-rate-limiter.js';
import { FailureStreak } from './failure-streak.js';
import { developerCode, generateNumericCode } from './code-generator.js';
import { StatelessCooldown, StatelessLoginCodes } from './stateless-login-codes.js';
import {
  RateLimitUnavailableError,
  RateLimitUnavailableException,
  ResendCooldownException,
  TooManyRequestsException,
} from '../errors.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';
import { type StoredUser } from '../store/user-store.interface.js';
import { type CodeRecord } from '../store/code-store.interface.js';

/** The single message of every refused code: wrong, expired, used, locked or unknown address. */
export const INVALID_CODE_MESSAGE = 'Invalid or expired code';

const LOGIN = 'login';

/** A code ready to deliver, and how to take it back if delivery fails. */
interface IssuedCode {
  readonly code: string;
  readonly expiresAt: number;
  undo(): Promise<void>;
}

/** Counter storage down under `'fail-closed'`: 503, never a 500. */
function unavailableIfStorageDown(error: unknown): unknown {
  return error instanceof RateLimitUnavailableError
    ? new RateLimitUnavailableException(Math.max(1, Math.ceil(error.retryAfterMs / 1000)))
    : error;
}

/** Where a request came from, for the per-(address, client network) counters. */
export interface CodeRequestOrigin {
  /** The client's IP address; requests without one share one client bucket per address. */
  readonly ip?: string;
}

/** The outcome of a code request, identical for known and unknown addresses. */
export interface CodeRequestResult {
  /** Code lifetime in seconds. */
  readonly expiresIn: number;
  /** Only in developer mode: the code itself. */
  readonly developerCode?: string;
}

/**
 * Email-code login: issues codes (stored only as keyed hashes) and checks them. Every rule is
 * enforced by one atomic store operation, so parallel requests and several instances cannot
 * get more guesses, more codes or more sessions than the limits allow.
 */
@Injectable()
export class LoginCodeService {
  private readonly logger = new Logger('OtpAuth');

  constructor(
    @Inject(OTP_CODE_CONFIG) private readonly config: CodeConfig,
    private readonly keys: SecretKeys,
    private readonly events: OtpAuthEvents,
    private readonly stateless: StatelessLoginCodes,
    @Inject(OTP_CODE_DELIVERY) private readonly delivery: CodeDelivery,
    private readonly recipients: RecipientLimit,
    private readonly limiter: OtpRateLimiter,
    private readonly streak: FailureStreak,
  ) {}

  /** Issues a code for an address and delivers it. `email` must already be normalised. */
  async requestCode(email: string, locale?: string, origin: CodeRequestOrigin = {}): Promise<CodeRequestResult> {
    const { store, developerMode, autoCreateUser } = this.config;
    // Inline delivery may answer at a fixed time after this (see InlineDelivery): lookups included.
    const startedAt = performance.now();
    // With auto-create on, every address can sign in, so no user lookup is needed (and none leaks).
    const deliver = autoCreateUser || (await store.findUserByEmail(email)) !== null;
    this.delivery.assertReady();
    const issued =
      this.config.codeMode === 'stateless'
        ? await this.issueStateless(email, origin)
        : await this.issueStored(email, origin);
    const now = this.config.clock();
    const ttlSeconds = Math.max(1, Math.round((issued.expiresAt - now) / 1000));

    const context: OtpDeliveryContext = {
      purpose: LOGIN,
      expiresAt: new Date(issued.expiresAt),
      ttlSeconds,
      ...(locale ? { locale } : {}),
      deliveryId: randomUUID(), // one per code; every retry of this message repeats it
    };
    // Senders that resolve a destination (a phone number) count it against `delivery.recipientLimit`.
    const message: CodeMessage = {
      email,
      code: issued.code,
      context: this.recipients.bind(context),
      withdraw: () => issued.undo(),
    };
    // Outbox: answered now, sent in the background. Inline: addresses without a message are
    // answered like the others (see InlineDelivery). Either withdraws the code if it cannot go out.
    await this.delivery.deliver(deliver ? message : null, startedAt);
    return developerMode ? { expiresIn: ttlSeconds, developerCode: issued.code } : { expiresIn: ttlSeconds };
  }

  /** Stored mode: a random code, kept as a keyed hash; one live code per address. */
  private async issueStored(email: string, origin: CodeRequestOrigin): Promise<IssuedCode> {
    const { store, otpTtl, resendCooldown, developerMode, otpLength } = this.config;
    const now = this.config.clock();
    const current = await store.findCode(email, LOGIN);
    if (current && current.sentAt + resendCooldown * 1000 > now) {
      throw new ResendCooldownException(Math.ceil((current.sentAt + resendCooldown * 1000 - now) / 1000));
    }
    // After the cooldown check: a refused request must not spend the address's allowance.
    await this.chargeAddress('send', email, origin);
    const code = developerMode ? developerCode(otpLength) : generateNumericCode(otpLength);
    const expiresAt = now + otpTtl * 1000;
    const next = await store.replaceCode(current, {
      email,
      purpose: LOGIN,
      codeHash: this.keys.hashCode(LOGIN, email, code),
      expiresAt,
      now,
    });
    if (!next) throw new ResendCooldownException(Math.max(1, resendCooldown));
    return { code, expiresAt, undo: () => this.withdraw(email, next.generation, current) };
  }

  /** Stateless mode: a derived code (see {@link StatelessLoginCodes}); nothing about it is stored. */
  private async issueStateless(email: string, origin: CodeRequestOrigin): Promise<IssuedCode> {
    let issued: IssuedCode;
    try {
      issued = await this.stateless.issue(email);
    } catch (error) {
      if (error instanceof StatelessCooldown) throw new ResendCooldownException(error.retryAfterSeconds);
      throw unavailableIfStorageDown(error);
    }
    // The cooldown is a marker inside issue(), so the address is charged after it, and a
    // refusal here takes the code (and its cooldown) back.
    try {
      await this.chargeAddress('send', email, origin);
    } catch (error) {
      await issued.undo();
      throw error;
    }
    return issued;
  }

  /** Counts the request under the address's counters; 429 (with `retryAfterSeconds`) when over. */
  private async chargeAddress(action: 'send' | 'verify', email: string, origin: CodeRequestOrigin): Promise<void> {
    const verdict = await this.limiter.checkAddress(
      action,
      email,
      origin.ip,
      action === 'send' ? 'requestOtp' : 'verifyOtp',
    );
    if (!verdict.allowed) throw new TooManyRequestsException(verdict.retryAfter);
  }

  /**
   * Checks a code and returns the signed-in user (created and marked verified as needed).
   * Throws the same 401 for every failure.
   */
  async verifyCode(email: string, code: string, origin: CodeRequestOrigin = {}): Promise<StoredUser> {
    const streak = await this.streak.check(email);
    if (!streak.allowed) {
      this.events.emit({ type: 'code.locked_out', email });
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    await this.chargeAddress('verify', email, origin);
    if (this.config.codeMode === 'stateless') {
      try {
        await this.stateless.check(email, code);
      } catch (error) {
        // Every refusal of a stateless check counts (it does not say why it refused).
        if (error instanceof UnauthorizedException) await this.streak.recordFailure(email);
        throw unavailableIfStorageDown(error);
      }
      if (streak.failures > 0) await this.streak.reset(email);
      return this.signIn(email);
    }
    const { store, maxAttempts, addressFailureLimit } = this.config;
    const now = this.config.clock();
    const submitted = this.keys.hashCode(LOGIN, email, code);
    const row = await store.findCode(email, LOGIN);
    if (!row || row.codeHash === null || row.expiresAt <= now) {
      hashesEqual(submitted, submitted);
      const reason = !row ? 'no_code' : row.codeHash === null ? 'already_used' : 'expired';
      this.events.emit({ type: 'code.failed', email, reason });
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    // Reserve the guess before evaluating it: the limits hold however many requests race.
    const reserved = await store.reserveAttempt(email, LOGIN, row.generation, {
      maxAttempts,
      maxFailures: addressFailureLimit.max,
      failureWindowCutoff: now - addressFailureLimit.window * 1000,
      now,
    });
    if (!reserved) {
      this.events.emit({ type: 'code.locked_out', email });
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    if (!hashesEqual(row.codeHash, submitted)) {
      await this.streak.recordFailure(email);
      this.events.emit({ type: 'code.failed', email, reason: 'wrong' });
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    if (!(await store.consumeCode(email, LOGIN, row.generation))) {
      this.events.emit({ type: 'code.failed', email, reason: 'already_used' });
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    if (streak.failures > 0) await this.streak.reset(email);
    return this.signIn(email);
  }

  /** The user behind a verified address: created and marked verified as needed. */
  private async signIn(email: string): Promise<StoredUser> {
    const { store, autoCreateUser } = this.config;
    let user = await store.findUserByEmail(email);
    if (!user) {
      if (!autoCreateUser) throw new UnauthorizedException(INVALID_CODE_MESSAGE);
      // Created verified: the code just proved the address (no separate update and re-read).
      user = await store.createOrGetUser(email, { verified: true });
      if (!user) throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    if (!user.isVerified) {
      user = await store.markUserVerified(user.id);
      if (!user) throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    this.events.emit({ type: 'code.verified', email, userId: user.id });
    return user;
  }

  /** Undo of a failed delivery: the new code dies and the cooldown is not consumed. */
  private async withdraw(email: string, generation: number, previous: CodeRecord | null): Promise<void> {
    try {
      await this.config.store.restoreCode(email, LOGIN, generation, previous);
    } catch (error) {
      this.logger.error(`Could not withdraw an undelivered code: ${(error as Error).message}`);
    }
  }
}
