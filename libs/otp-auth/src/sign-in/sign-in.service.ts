import { Injectable } from '@nestjs/common';
import type { StoredUser } from '../store/user-store.interface.js';
import { SessionService } from '../tokens/session.service.js';
import { MfaChallengeService } from '../totp/mfa-challenge.service.js';
import { TotpService } from '../totp/totp.service.js';
import type { SignInResult } from './sign-in-result.js';

/**
 * The one place that decides what a passed first factor (an email code, or the app's own
 * `signInWithFirstFactor`) leads to: a session, or a second-factor challenge when the user has
 * TOTP on. Every sign-in goes through it, so a new first factor cannot skip the second.
 */
@Injectable()
export class SignInService {
  constructor(
    private readonly sessions: SessionService,
    private readonly totp: TotpService,
    private readonly mfa: MfaChallengeService,
  ) {}

  /** A session, or a challenge when the user has TOTP active. */
  async afterFirstFactor(user: StoredUser, amr: readonly string[]): Promise<SignInResult> {
    // The store may have read the TOTP state with the user (one statement fewer per sign-in).
    const active = user.totpActive ?? (await this.totp.isActive(user.id));
    return active ? this.mfa.createChallenge(user, amr) : this.sessions.issue(user, amr);
  }
}
