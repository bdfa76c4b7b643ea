import { randomUUID } from 'node:crypto';
import { OTP_TOKEN_CONFIG, type TokenConfig } from './token.options.js';
import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { newRefreshToken, SecretKeys } from '../crypto/secret-keys.js';
import { type SessionRevocationReason } from '../events/otp-auth-event.js';
import type { AccessTokenClaims } from './access-token-claims.js';
import { AccessTokenService } from './access-token.service.js';
import { RevocationList } from './revocation-list.js';
import { hasSecondFactor } from './amr.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';
import { type StoredUser } from '../store/user-store.interface.js';
import { type RefreshTokenRecord, type RevocationRecord } from '../store/session-store.interface.js';

const REVOCATION_MARGIN_MS = 60_000;

/** Refusal of a one-factor session for a user with TOTP on. */
export const SECOND_FACTOR_REQUIRED_MESSAGE = 'Two-factor authentication required';

/** The single message of every refused refresh token. */
export const INVALID_REFRESH_MESSAGE = 'Invalid or expired refresh token';

/** Tokens of a signed-in session. */
export interface SessionTokens {
  readonly accessToken: string;
  /** Access-token lifetime in seconds. */
  readonly expiresIn: number;
  /** Opaque, 256 random bits; stored only as a keyed hash. */
  readonly refreshToken: string;
  /**
   * Seconds until the refresh token expires: `refreshTokenTtl`, less near the end of
   * `sessionMaxAge`. The refresh cookie's `Max-Age`.
   */
  readonly refreshExpiresIn: number;
  readonly sessionId: string;
  readonly userId: string;
  readonly claims: AccessTokenClaims;
}

/**
 * Sessions are refresh-token families. Each refresh rotates the token; the successor of a
 * token is derived from it (HMAC), so the database's unique key on the successor's hash makes
 * the rotation happen exactly once, and a repeat inside the grace period gets the same
 * successor. A rotated token presented later means the family leaked: it is revoked whole.
 * A session ends `sessionMaxAge` after sign-in however often it is refreshed, and, with
 * `sessionIdleTimeout`, when no refresh came for that long.
 */
@Injectable()
export class SessionService {
  constructor(
    @Inject(OTP_TOKEN_CONFIG) private readonly config: TokenConfig,
    private readonly keys: SecretKeys,
    private readonly accessTokens: AccessTokenService,
    private readonly revocations: RevocationList,
    private readonly events: OtpAuthEvents,
  ) {}

  /**
   * Opens a session for a user who has passed every required factor. A session without a second
   * factor for a user with TOTP on is refused, whoever calls this.
   */
  async issue(user: StoredUser, amr: readonly string[]): Promise<SessionTokens> {
    const { store } = this.config;
    const oneFactor = !hasSecondFactor(amr);
    // No TOTP look-up before the insert: the sign-in flow has just made it (to choose between a
    // session and a challenge), and the check after the insert is the one that holds under races.
    const now = this.config.clock();
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    const first = this.refreshRecord(refreshToken, sessionId, user.id, null, now, now);
    await store.createSession(
      { id: sessionId, userId: user.id, amr: [...amr], createdAt: now, revokedAt: null },
      first,
    );
    // A user with TOTP on gets no one-factor session, whoever called: confirm() lists sessions
    // after activating, so either it saw this one, or this check sees the activation.
    if (oneFactor && (await store.findTotp(user.id))?.active) {
      await this.revoke(sessionId, this.config.clock(), 'second_factor_missing');
      throw new UnauthorizedException(SECOND_FACTOR_REQUIRED_MESSAGE);
    }
    this.events.emit({ type: 'session.created', userId: user.id, sessionId, amr: [...amr] });
    return this.tokensFor(user, sessionId, amr, now, refreshToken, first.expiresAt - now);
  }

  /** Rotates a refresh token: a new access token and the token's one successor. */
  async refresh(refreshToken: string): Promise<SessionTokens> {
    const { store } = this.config;
    const now = this.config.clock();
    const tokenHash = this.keys.hashRefreshToken(refreshToken);
    const found = await store.findRefreshToken(tokenHash);
    if (!found || found.session.revokedAt !== null) throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
    const { session } = found;
    // Before the expiry check: tokens are capped at the session's end, and it should be recorded.
    // Before the insert: a grace repeat past the end is refused as well.
    if (now >= this.sessionEnd(session.createdAt)) {
      await this.revoke(session.id, now, 'max_age');
      throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
    }
    if (found.token.expiresAt <= now) throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
    const successor = this.keys.successorOf(refreshToken);
    const successorHash = this.keys.hashRefreshToken(successor);
    const idle = this.config.sessionIdleTimeout;
    // The token's issue time is the session's last sign-in or rotation, unless the token was
    // rotated already: then the grace and reuse checks below decide.
    if (idle !== null && now - found.token.createdAt > idle * 1000 && !(await store.findRefreshToken(successorHash))) {
      await this.revoke(session.id, now, 'idle_timeout');
      throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
    }
    let successorRecord = this.refreshRecord(successor, session.id, session.userId, tokenHash, now, session.createdAt);
    if (!(await store.insertSuccessor(successorRecord))) {
      const repeated = await this.graceRepeat(successor, now);
      if (!repeated) {
        this.events.emit({ type: 'refresh.reuse_detected', userId: session.userId, sessionId: session.id });
        await this.revoke(session.id, now, 'refresh_reuse');
        throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
      }
      successorRecord = repeated;
    }
    // A session opened without a second factor cannot outlive the user turning TOTP on.
    const lacksSecondFactor = !hasSecondFactor(session.amr);
    const { user, totpActive } = await this.userOf(session.userId, lacksSecondFactor);
    if (!user || (lacksSecondFactor && totpActive)) {
      await this.revoke(session.id, now, user ? 'second_factor_missing' : 'user_gone');
      throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
    }
    const lifetime = successorRecord.expiresAt - now;
    return this.tokensFor(user, session.id, session.amr, session.createdAt, successor, lifetime);
  }

  /**
   * Revokes the session a refresh token belongs to (whatever its rotation state); returns its id,
   * or undefined for an unknown token.
   */
  async revokeByRefreshToken(refreshToken: string): Promise<string | undefined> {
    const found = await this.config.store.findRefreshToken(this.keys.hashRefreshToken(refreshToken));
    if (!found) return undefined;
    await this.revoke(found.session.id, this.config.clock(), 'logout');
    return found.session.id;
  }

  /** Revokes a session and, with it, every access token issued for it. */
  async revokeSession(sessionId: string, reason: SessionRevocationReason = 'logout'): Promise<void> {
    await this.revoke(sessionId, this.config.clock(), reason);
  }

  /** Revokes one access token (until it would have expired anyway). */
  async revokeAccessToken(claims: AccessTokenClaims): Promise<void> {
    const entry: RevocationRecord = {
      key: `jti:${claims.jti}`,
      expiresAt: claims.exp * 1000,
      createdAt: this.config.clock(),
    };
    await this.config.store.addRevocation(entry);
    await this.revocations.announce(entry);
  }

  /**
   * Revokes every session of a user, but `keepSessionId` when given (the caller's own, from its
   * access token's `sid`); returns how many were live and revoked.
   */
  async revokeAllForUser(
    userId: string,
    reason: SessionRevocationReason = 'logout_all',
    keepSessionId?: string,
  ): Promise<number> {
    const ids = (await this.config.store.listActiveSessionIds(userId)).filter((id) => id !== keepSessionId);
    // A fresh timestamp per entry: each is stamped when it is written, so other instances' pulls see it.
    for (const id of ids) await this.revoke(id, this.config.clock(), reason);
    return ids.length;
  }

  /** The session's user and, when asked, whether TOTP is on: one read where the store can. */
  private async userOf(
    userId: string,
    withSecondFactor: boolean,
  ): Promise<{ user: StoredUser | null; totpActive: boolean }> {
    const { store } = this.config;
    if (!withSecondFactor) return { user: await store.findUserById(userId), totpActive: false };
    if (store.findUserWithSecondFactor) {
      const found = await store.findUserWithSecondFactor(userId);
      return { user: found?.user ?? null, totpActive: found?.totpActive ?? false };
    }
    const user = await store.findUserById(userId);
    return { user, totpActive: user !== null && (await store.findTotp(user.id))?.active === true };
  }

  /** When a session opened at `createdAt` (epoch ms) ends, however often it is refreshed. */
  private sessionEnd(createdAt: number): number {
    return createdAt + this.config.sessionMaxAge * 1000;
  }

  /**
   * A repeat inside the grace period is honoured only while the successor is still the live
   * end of the chain; otherwise the chain has moved on and the repeat is reuse. Returns the
   * stored successor when honoured.
   */
  private async graceRepeat(successor: string, now: number): Promise<RefreshTokenRecord | null> {
    const { store } = this.config;
    const successorRow = await store.findRefreshToken(this.keys.hashRefreshToken(successor));
    if (!successorRow || successorRow.session.revokedAt !== null) return null;
    if (now - successorRow.token.createdAt >= this.config.refreshReuseGracePeriod * 1000) return null;
    const grandchild = await store.findRefreshToken(this.keys.hashRefreshToken(this.keys.successorOf(successor)));
    return grandchild === null ? successorRow.token : null;
  }

  private async revoke(sessionId: string, now: number, reason: SessionRevocationReason): Promise<void> {
    // Access tokens of the session live at most accessTokenTtl from now; the margin covers a
    // refresh that read the session just before this revocation and signs a token just after.
    const entry: RevocationRecord = {
      key: `sid:${sessionId}`,
      expiresAt: now + this.config.accessTokenTtl * 1000 + REVOCATION_MARGIN_MS,
      createdAt: now,
    };
    const ended = await this.config.store.revokeSession(sessionId, now, entry);
    await this.revocations.announce(entry);
    if (ended) this.events.emit({ type: 'session.revoked', sessionId, reason });
  }

  private async tokensFor(
    user: StoredUser,
    sessionId: string,
    amr: readonly string[],
    authTime: number,
    refreshToken: string,
    refreshLifetimeMs: number,
  ): Promise<SessionTokens> {
    const custom = await this.config.getAdditionalClaims(user.entity);
    const access = this.accessTokens.sign(user.id, sessionId, amr, authTime, custom ?? {});
    return {
      accessToken: access.token,
      expiresIn: access.expiresIn,
      refreshToken,
      // Rounded down: the cookie must not outlive the token.
      refreshExpiresIn: Math.max(0, Math.floor(refreshLifetimeMs / 1000)),
      sessionId,
      userId: user.id,
      claims: access.claims,
    };
  }

  private refreshRecord(
    token: string,
    sessionId: string,
    userId: string,
    parentHash: string | null,
    now: number,
    sessionCreatedAt: number,
  ): RefreshTokenRecord {
    return {
      tokenHash: this.keys.hashRefreshToken(token),
      sessionId,
      userId,
      parentHash,
      createdAt: now,
      expiresAt: Math.min(now + this.config.refreshTokenTtl * 1000, this.sessionEnd(sessionCreatedAt)),
    };
  }
}
