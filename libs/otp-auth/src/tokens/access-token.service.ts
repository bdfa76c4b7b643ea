import { randomBytes } from 'node:crypto';
import { OTP_TOKEN_CONFIG, type TokenConfig } from './token.options.js';
import { Inject, Injectable, Logger, UnauthorizedException } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
// @nestjs/jwt's own type: the package pulls jsonwebtoken and its types in for us.
import type { JwtVerifyOptions as VerifyOptions } from '@nestjs/jwt';
import { SecretKeys } from '../crypto/secret-keys.js';
import { REGISTERED_CLAIMS, type AccessTokenClaims } from './access-token-claims.js';
import { RevocationList } from './revocation-list.js';

/** Verified tokens remembered at once: about 1 KB each, so at most ~10 MB. */
const VERIFIED_CACHE_SIZE = 10_000;

/** The single message of every refused access token: no hint about which check failed. */
export const INVALID_TOKEN_MESSAGE = 'Invalid or expired access token';

/** A signed access token and what a client needs to know about it. */
export interface IssuedAccessToken {
  readonly token: string;
  readonly claims: AccessTokenClaims;
  /** Lifetime in seconds. */
  readonly expiresIn: number;
}

/**
 * Issues and verifies access tokens. This is the one verifier of the module: the guards call
 * `verify`, and the Passport strategy hands jsonwebtoken the same key and options and then
 * calls `assertClaims`, so both paths apply exactly the same rules.
 */
@Injectable()
export class AccessTokenService {
  private readonly logger = new Logger('OtpAuth');
  private readonly jwt: JwtService;
  /** Options for jsonwebtoken: algorithm pinned, issuer and audience required. */
  readonly verifyOptions: Readonly<VerifyOptions>;
  private warnedAboutOverride = false;
  /** Claims of recently verified tokens (see {@link verify}); bounded. */
  private readonly verified = new Map<string, AccessTokenClaims>();

  constructor(
    @Inject(OTP_TOKEN_CONFIG) private readonly config: TokenConfig,
    private readonly keys: SecretKeys,
    private readonly revocations: RevocationList,
  ) {
    this.verifyOptions = Object.freeze<VerifyOptions>({
      algorithms: ['HS256'],
      issuer: config.issuer,
      audience: config.audience,
    });
    this.jwt = new JwtService({
      secret: keys.accessToken,
      signOptions: { algorithm: 'HS256', header: { alg: 'HS256', typ: 'JWT' } },
      verifyOptions: this.verifyOptions,
    });
  }

  /** The signing key (a KeyObject, parsed once). */
  get key(): SecretKeys['accessToken'] {
    return this.keys.accessToken;
  }

  /**
   * Signs an access token for a session; custom claims never override registered ones.
   * `authTime` is when the session was opened (epoch milliseconds).
   */
  sign(
    userId: string,
    sessionId: string,
    amr: readonly string[],
    authTime: number,
    custom: Record<string, unknown>,
  ): IssuedAccessToken {
    if (!Number.isFinite(authTime)) {
      // A store returning a session without a numeric createdAt would otherwise mint tokens that
      // every verifier refuses (auth_time: null).
      throw new TypeError(`AccessTokenService.sign: authTime must be epoch milliseconds (got ${String(authTime)}).`);
    }
    const iat = Math.floor(this.config.clock() / 1000);
    const extra: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(custom)) {
      if (REGISTERED_CLAIMS.has(key)) {
        if (!this.warnedAboutOverride) {
          this.warnedAboutOverride = true;
          this.logger.warn(`getAdditionalClaims returned registered claim "${key}"; it was ignored.`);
        }
        continue;
      }
      extra[key] = value;
    }
    const claims: AccessTokenClaims = {
      ...extra,
      sub: userId,
      sid: sessionId,
      jti: randomBytes(16).toString('base64url'),
      typ: 'access',
      amr: [...amr],
      auth_time: Math.floor(authTime / 1000),
      iat,
      exp: iat + this.config.accessTokenTtl,
      iss: this.config.issuer,
      aud: this.config.audience,
    };
    return { token: this.jwt.sign(claims), claims, expiresIn: this.config.accessTokenTtl };
  }

  /**
   * Verifies signature, algorithm, `iss`, `aud`, `exp`, type and revocation. Throws 401.
   *
   * A client sends the same access token with every request until it expires, so the claims of
   * tokens that passed are kept, keyed by the exact token string (a forged or altered token can
   * never match one): a repeat skips the HMAC and the JSON decoding, while expiry and revocation
   * are still checked on every call.
   */
  verify(token: string): AccessTokenClaims {
    const known = this.verified.get(token);
    if (known !== undefined) {
      if (known.exp * 1000 > this.config.clock() && !this.revocations.isRevoked(known.sid, known.jti)) return known;
      this.verified.delete(token);
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    let payload: unknown;
    try {
      payload = this.jwt.verify(token, this.clockOptions());
    } catch {
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    const claims = this.assertClaims(payload);
    // The cached claims are shared by every request with this token: nobody may change them.
    Object.freeze(claims.amr);
    Object.freeze(claims);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      // Oldest first: Map iteration follows insertion order.
      this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(token, claims);
    return claims;
  }

  /** Like `verify`, but returns null instead of throwing (for logout, which is idempotent). */
  tryVerify(token: string | undefined): AccessTokenClaims | null {
    if (!token) return null;
    try {
      return this.verify(token);
    } catch {
      return null;
    }
  }

  /**
   * The checks that follow a valid signature: token type, required claims, revocation.
   * jsonwebtoken does not require `exp` by itself, so it is checked here.
   */
  assertClaims(payload: unknown): AccessTokenClaims {
    const claims = payload as Partial<AccessTokenClaims> | null;
    if (
      claims === null ||
      typeof claims !== 'object' ||
      claims.typ !== 'access' ||
      typeof claims.sub !== 'string' ||
      typeof claims.sid !== 'string' ||
      typeof claims.jti !== 'string' ||
      typeof claims.exp !== 'number' ||
      typeof claims.iat !== 'number' ||
      (claims.auth_time !== undefined && typeof claims.auth_time !== 'number') ||
      this.revocations.isRevoked(claims.sid, claims.jti)
    ) {
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    return claims as AccessTokenClaims;
  }

  private clockOptions(): VerifyOptions | undefined {
    // Only a custom clock needs an explicit timestamp; the default path passes nothing extra.
    return this.config.clock === Date.now ? undefined : { clockTimestamp: Math.floor(this.config.clock() / 1000) };
  }
}
