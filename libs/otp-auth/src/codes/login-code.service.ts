import {
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashesEqual, SecretKeys } from '../crypto/secret-keys.js';
import { OTP_SENDER, type OtpSender } from '../delivery/otp-sender.interface.js';
import { OTP_AUTH_CONFIG } from '../otp-auth.constants.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import type { CodeRecord, StoredUser } from '../store/otp-auth-store.interface.js';
import { developerCode, generateNumericCode } from './code-generator.js';

/** The single message of every refused code: wrong, expired, used, locked or unknown address. */
export const INVALID_CODE_MESSAGE = 'Invalid or expired code';

const LOGIN = 'login';

/** The outcome of a code request, identical for known and unknown addresses. */
export interface CodeRequestResult {
  /** Code lifetime in seconds. */
  readonly expiresIn: number;
  /** Only in developer mode: the code itself. */
  readonly developerCode?: string;
}

/** Thrown when an address asks for a new code inside the resend cooldown. */
export class ResendCooldownException extends HttpException {
  constructor(readonly retryAfterSeconds: number) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        error: 'Too Many Requests',
        message: `Please wait ${retryAfterSeconds} seconds before requesting another code.`,
        retry_after: retryAfterSeconds,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * Email-code login: issues codes (stored only as keyed hashes) and checks them. Every rule is
 * enforced by one atomic store operation, so parallel requests and several instances cannot
 * get more guesses, more codes or more sessions than the limits allow.
 */
@Injectable()
export class LoginCodeService {
  private readonly logger = new Logger('OtpAuth');
  /** Moving average of delivery time, spent on addresses that get no mail (no timing oracle). */
  private deliveryEstimateMs = 0;

  constructor(
    @Inject(OTP_AUTH_CONFIG) private readonly config: ResolvedOtpAuthOptions,
    @Inject(OTP_SENDER) private readonly sender: OtpSender,
    private readonly keys: SecretKeys,
  ) {}

  /** Issues a code for an address and delivers it. `email` must already be normalised. */
  async requestCode(email: string): Promise<CodeRequestResult> {
    const { store, otpTtl, resendCooldown, developerMode, autoCreateUser, otpLength } = this.config;
    // With auto-create on, every address can sign in, so no user lookup is needed (and none leaks).
    const deliver = autoCreateUser || (await store.findUserByEmail(email)) !== null;
    const now = this.config.clock();
    const current = await store.findCode(email, LOGIN);
    if (current && current.sentAt + resendCooldown * 1000 > now) {
      throw new ResendCooldownException(Math.ceil((current.sentAt + resendCooldown * 1000 - now) / 1000));
    }
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

    if (deliver) {
      const started = performance.now();
      try {
        await this.sender.send(email, code, { purpose: LOGIN, expiresAt: new Date(expiresAt), ttlSeconds: otpTtl });
      } catch (error) {
        await this.withdraw(email, next.generation, current);
        this.logger.error(`Code delivery failed: ${(error as Error)?.message ?? 'unknown error'}`);
        throw new ServiceUnavailableException('The code could not be sent. Please try again later.');
      }
      const took = performance.now() - started;
      this.deliveryEstimateMs = this.deliveryEstimateMs === 0 ? took : this.deliveryEstimateMs * 0.8 + took * 0.2;
    } else if (this.deliveryEstimateMs > 0) {
      await sleep(this.deliveryEstimateMs);
    }
    return developerMode ? { expiresIn: otpTtl, developerCode: code } : { expiresIn: otpTtl };
  }

  /**
   * Checks a code and returns the signed-in user (created and marked verified as needed).
   * Throws the same 401 for every failure.
   */
  async verifyCode(email: string, code: string): Promise<StoredUser> {
    const { store, maxAttempts, addressFailureLimit, autoCreateUser } = this.config;
    const now = this.config.clock();
    const submitted = this.keys.hashCode(LOGIN, email, code);
    const row = await store.findCode(email, LOGIN);
    if (!row || row.codeHash === null || row.expiresAt <= now) {
      hashesEqual(submitted, submitted);
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    // Reserve the guess before evaluating it: the limits hold however many requests race.
    const reserved = await store.reserveAttempt(email, LOGIN, row.generation, {
      maxAttempts,
      maxFailures: addressFailureLimit.max,
      failureWindowCutoff: now - addressFailureLimit.window * 1000,
      now,
    });
    if (!reserved || !hashesEqual(row.codeHash, submitted)) {
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    if (!(await store.consumeCode(email, LOGIN, row.generation))) {
      throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    let user = await store.findUserByEmail(email);
    if (!user) {
      if (!autoCreateUser) throw new UnauthorizedException(INVALID_CODE_MESSAGE);
      user = await store.createOrGetUser(email);
      if (!user) throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
    if (!user.isVerified) {
      user = await store.markUserVerified(user.id);
      if (!user) throw new UnauthorizedException(INVALID_CODE_MESSAGE);
    }
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
