import { randomBytes } from 'node:crypto';
import { OTP_TOTP_CONFIG, type TotpConfig } from './totp.options.js';
import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { SecretKeys } from '../crypto/secret-keys.js';
import { SessionService, type SessionTokens } from '../tokens/session.service.js';
import { TotpService, type SecondFactorProof } from './totp.service.js';
import { type StoredUser } from '../store/user-store.interface.js';

/** The single message of every refused `mfa_token`. */
export const INVALID_MFA_TOKEN_MESSAGE = 'Invalid or expired two-factor challenge';

/** Returned instead of tokens when the user must still pass the second factor. */
export interface MfaChallenge {
  readonly mfaRequired: true;
  /** Short-lived, single-use; accepted only by `POST totp/verify`. */
  readonly mfaToken: string;
  /** Lifetime in seconds. */
  readonly expiresIn: number;
}

interface MfaClaims {
  sub: string;
  jti: string;
  typ: 'mfa';
}

/**
 * The step between a first factor and a session for users with TOTP. The `mfa_token` is a JWT
 * of type `mfa` signed with its own key (so it is never an access token), backed by a stored
 * challenge that counts guesses and is consumed exactly once.
 */
@Injectable()
export class MfaChallengeService {
  private readonly jwt: JwtService;

  constructor(
    @Inject(OTP_TOTP_CONFIG) private readonly config: TotpConfig,
    keys: SecretKeys,
    private readonly totp: TotpService,
    private readonly sessions: SessionService,
  ) {
    this.jwt = new JwtService({
      secret: keys.mfaToken,
      signOptions: { algorithm: 'HS256' },
      verifyOptions: { algorithms: ['HS256'], issuer: config.issuer, audience: config.audience },
    });
  }

  /**
   * The second-factor challenge for a user who passed a first factor (`amr`) and has TOTP on:
   * a stored challenge and its signed `mfa_token`. `SignInService` decides when one is due.
   */
  async createChallenge(user: StoredUser, amr: readonly string[]): Promise<MfaChallenge> {
    const now = this.config.clock();
    const ttl = this.config.totp.mfaTokenTtl;
    const id = randomBytes(24).toString('base64url');
    await this.config.store.createMfaChallenge({
      id,
      userId: user.id,
      amr: [...amr],
      attempts: 0,
      expiresAt: now + ttl * 1000,
      consumedAt: null,
    });
    const iat = Math.floor(now / 1000);
    const mfaToken = this.jwt.sign({
      sub: user.id,
      jti: id,
      typ: 'mfa',
      iat,
      exp: iat + ttl,
      iss: this.config.issuer,
      aud: this.config.audience,
    });
    return { mfaRequired: true, mfaToken, expiresIn: ttl };
  }

  /** Checks the second factor against a challenge and opens the session. */
  async complete(mfaToken: string, proof: SecondFactorProof): Promise<SessionTokens> {
    const { store } = this.config;
    const claims = this.verifyToken(mfaToken);
    const challenge = await store.findMfaChallenge(claims.jti);
    const now = this.config.clock();
    if (!challenge || challenge.userId !== claims.sub) throw new UnauthorizedException(INVALID_MFA_TOKEN_MESSAGE);
    if (!(await store.reserveMfaAttempt(challenge.id, this.config.totp.mfaMaxAttempts, now))) {
      throw new UnauthorizedException(INVALID_MFA_TOKEN_MESSAGE);
    }
    const method = await this.totp.verify(challenge.userId, proof);
    if (!method) throw new UnauthorizedException('Invalid two-factor code');
    if (!(await store.consumeMfaChallenge(challenge.id, this.config.clock()))) {
      throw new UnauthorizedException(INVALID_MFA_TOKEN_MESSAGE);
    }
    const user = await store.findUserById(challenge.userId);
    if (!user) throw new UnauthorizedException(INVALID_MFA_TOKEN_MESSAGE);
    return this.sessions.issue(user, [...challenge.amr, method]);
  }

  private verifyToken(token: string): MfaClaims {
    let payload: Partial<MfaClaims> & { exp?: unknown };
    try {
      const timestamp = Math.floor(this.config.clock() / 1000);
      payload = this.jwt.verify(token, { clockTimestamp: timestamp });
    } catch {
      throw new UnauthorizedException(INVALID_MFA_TOKEN_MESSAGE);
    }
    if (
      payload.typ !== 'mfa' ||
      typeof payload.sub !== 'string' ||
      typeof payload.jti !== 'string' ||
      typeof payload.exp !== 'number'
    ) {
      throw new UnauthorizedException(INVALID_MFA_TOKEN_MESSAGE);
    }
    return payload as MfaClaims;
  }
}
