import { Inject, Injectable } from '@nestjs/common';
import { LoginCodeService, type CodeRequestResult } from './codes/login-code.service.js';
import { OTP_AUTH_CONFIG } from './otp-auth.constants.js';
import type { ResolvedOtpAuthOptions } from './options/resolve-options.js';
import type { CleanupReport, StoredUser } from './store/otp-auth-store.interface.js';
import type { AccessTokenClaims } from './tokens/access-token-claims.js';
import { SessionService, type SessionTokens } from './tokens/session.service.js';

/** Trims and lower-cases an address, as every entry point does before using it. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/**
 * The module's programmatic face: everything the HTTP routes do, for apps that mount their
 * own routes (`mountRoutes: false`) or bring their own first factor.
 */
@Injectable()
export class OtpAuthService {
  constructor(
    @Inject(OTP_AUTH_CONFIG) private readonly config: ResolvedOtpAuthOptions,
    private readonly codes: LoginCodeService,
    private readonly sessions: SessionService,
  ) {}

  /** Sends a login code to an address (same result whether or not it has an account). */
  requestOtp(email: string): Promise<CodeRequestResult> {
    return this.codes.requestCode(normalizeEmail(email));
  }

  /** Checks a login code and opens a session. */
  async verifyOtp(email: string, code: string): Promise<SessionTokens> {
    const user = await this.codes.verifyCode(normalizeEmail(email), code);
    return this.sessions.issue(user, ['otp']);
  }

  /**
   * Opens a session for a user your own code has authenticated (a password check, an OAuth
   * callback). `amr` lists the methods used, e.g. `['pwd']`.
   */
  issueSession(user: StoredUser, amr: readonly string[]): Promise<SessionTokens> {
    return this.sessions.issue(user, amr);
  }

  /** Rotates a refresh token. */
  refresh(refreshToken: string): Promise<SessionTokens> {
    return this.sessions.refresh(refreshToken);
  }

  /** Ends a session: by its refresh token, its access token, or both. Never throws on bad input. */
  async logout(refreshToken: string | undefined, access: AccessTokenClaims | null): Promise<void> {
    if (refreshToken) await this.sessions.revokeByRefreshToken(refreshToken);
    if (access) {
      await this.sessions.revokeSession(access.sid);
      await this.sessions.revokeAccessToken(access);
    }
  }

  /** Ends every session of a user; returns how many were live. */
  logoutAll(userId: string): Promise<number> {
    return this.sessions.revokeAllForUser(userId);
  }

  /** Looks up a user by id (as in `sub`). */
  findUser(userId: string): Promise<StoredUser | null> {
    return this.config.store.findUserById(userId);
  }

  /** Removes expired codes, tokens, sessions and revocations; call it from a scheduled job. */
  cleanup(): Promise<CleanupReport> {
    const { resendCooldown, addressFailureLimit } = this.config;
    return this.config.store.cleanup({
      now: this.config.clock(),
      codeRetention: Math.max(resendCooldown, addressFailureLimit.window) * 1000,
    });
  }
}
