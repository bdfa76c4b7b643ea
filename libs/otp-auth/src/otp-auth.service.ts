import { Inject, Injectable } from '@nestjs/common';
import { LoginCodeService, type CodeRequestOrigin, type CodeRequestResult } from './codes/login-code.service.js';
import { FailureStreak } from './codes/failure-streak.js';
import { OTP_CODE_CONFIG, type CodeConfig } from './codes/code.options.js';
import { OTP_AUTH_STORE } from './store/constants.js';
import type { CleanupReport, OtpAuthStore } from './store/otp-auth-store.interface.js';
import type { AccessTokenClaims } from './tokens/access-token-claims.js';
import { SessionService, type SessionTokens } from './tokens/session.service.js';
import { MfaChallengeService } from './totp/mfa-challenge.service.js';
import type { SignInResult } from './sign-in/sign-in-result.js';
import { SignInService } from './sign-in/sign-in.service.js';
import { SECOND_FACTOR_AMR } from './tokens/amr.js';
import type { SecondFactorProof } from './totp/totp.service.js';
import { normalizeEmail } from './codes/normalize-email.js';
import { type StoredUser } from './store/user-store.interface.js';

/**
 * The module's programmatic face: everything the HTTP routes do, for apps that mount their
 * own routes (`mountRoutes: false`) or bring their own first factor.
 */
@Injectable()
export class OtpAuthService {
  constructor(
    @Inject(OTP_CODE_CONFIG) private readonly config: CodeConfig,
    @Inject(OTP_AUTH_STORE) private readonly store: OtpAuthStore,
    private readonly codes: LoginCodeService,
    private readonly sessions: SessionService,
    private readonly mfa: MfaChallengeService,
    private readonly signIn: SignInService,
    private readonly failureStreak: FailureStreak,
  ) {}

  /**
   * Sends a login code to an address (same result whether or not it has an account).
   * `locale` (a BCP 47 tag) picks the message language where the sender supports it; `ip`, the
   * client's address, keys the per-address counters per client network, so a stranger cannot
   * spend the owner's allowance (calls without one share one bucket per address).
   * @throws ResendCooldownException or TooManyRequestsException (429, `retryAfterSeconds`).
   */
  requestOtp(email: string, options: { locale?: string } & CodeRequestOrigin = {}): Promise<CodeRequestResult> {
    return this.codes.requestCode(normalizeEmail(email), options.locale, { ip: options.ip });
  }

  /**
   * Checks a login code. Opens a session, or, when the user has TOTP active, returns a
   * challenge to complete with {@link verifySecondFactor}.
   */
  async verifyOtp(email: string, code: string, origin: CodeRequestOrigin = {}): Promise<SignInResult> {
    const user = await this.codes.verifyCode(normalizeEmail(email), code, origin);
    return this.signIn.afterFirstFactor(user, ['otp']);
  }

  /**
   * For apps with their own first factor (a password check, an OAuth callback): opens a session
   * for a user your code has authenticated, or returns a TOTP challenge when the user has 2FA on.
   * `amr` lists the methods used, e.g. `['pwd']`. There is no way around the second factor here.
   * The session's `auth_time` is now, which `RequireRecentSignIn` routes take as a fresh
   * sign-in: call this after the user actually proved who they are, not for silent re-logins.
   */
  async signInWithFirstFactor(user: StoredUser, amr: readonly string[]): Promise<SignInResult> {
    for (const method of amr) {
      // A caller cannot claim a second factor, or smuggle one in through the stored comma list.
      if (!/^[a-z0-9_-]{1,16}$/i.test(method) || SECOND_FACTOR_AMR.has(method)) {
        throw new TypeError(`signInWithFirstFactor: "${method}" is not a first-factor method name.`);
      }
    }
    return this.signIn.afterFirstFactor(user, amr);
  }

  /**
   * Clears an address's count of wrong codes in a row (`consecutiveFailures`), e.g. after support
   * has confirmed the owner: at `max` the address gets no more guesses until its window ends.
   */
  resetFailureStreak(email: string): Promise<void> {
    return this.failureStreak.reset(normalizeEmail(email));
  }

  /** Completes a challenge with a TOTP code or a backup code and opens the session. */
  verifySecondFactor(mfaToken: string, proof: SecondFactorProof): Promise<SessionTokens> {
    return this.mfa.complete(mfaToken, proof);
  }

  /** Rotates a refresh token. */
  refresh(refreshToken: string): Promise<SessionTokens> {
    return this.sessions.refresh(refreshToken);
  }

  /** Ends a session: by its refresh token, its access token, or both. Never throws on bad input. */
  async logout(refreshToken: string | undefined, access: AccessTokenClaims | null): Promise<void> {
    const ended = refreshToken ? await this.sessions.revokeByRefreshToken(refreshToken) : undefined;
    // The session's revocation covers every access token issued for it, the presented one
    // included, so the same session is not revoked twice and no per-token entry is needed.
    if (access && access.sid !== ended) await this.sessions.revokeSession(access.sid);
  }

  /** Ends every session of a user; returns how many were live. */
  logoutAll(userId: string): Promise<number> {
    return this.sessions.revokeAllForUser(userId);
  }

  /** Looks up a user by email (trimmed and lower-cased first). */
  findUserByEmail(email: string): Promise<StoredUser | null> {
    return this.store.findUserByEmail(normalizeEmail(email));
  }

  /** Looks up a user by id (as in `sub`). */
  findUser(userId: string): Promise<StoredUser | null> {
    return this.store.findUserById(userId);
  }

  /**
   * Removes expired codes, tokens, sessions and revocations. The module runs it every
   * `cleanupInterval` seconds by itself; call it directly when that option is `false`.
   */
  cleanup(): Promise<CleanupReport> {
    const { resendCooldown, addressFailureLimit } = this.config;
    return this.store.cleanup({
      now: this.config.clock(),
      codeRetention: Math.max(resendCooldown, addressFailureLimit.window) * 1000,
    });
  }
}
