import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import type { AuthRequest } from '../http/auth-request.js';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';
import { AccessTokenService } from '../tokens/access-token.service.js';

/** Name of the module's Passport strategy: `AuthGuard(OTP_JWT_STRATEGY)`. */
export const OTP_JWT_STRATEGY = 'otp-jwt';

/**
 * The module's access tokens as a Passport strategy, for `AuthGuard('otp-jwt')` and for
 * combining with an app's other strategies. passport-jwt checks the signature with the same
 * pre-built key and the same options object as the module's guards, then `validate` runs the
 * same claim and revocation checks: one set of rules, two entry points. Add it to the providers of
 * a module that imports `OtpAuthModule` (or of any module when `isGlobal` is on).
 */
@Injectable()
export class OtpJwtStrategy extends PassportStrategy(Strategy, OTP_JWT_STRATEGY) {
  constructor(private readonly accessTokens: AccessTokenService) {
    const { algorithms, issuer, audience } = accessTokens.verifyOptions;
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      // jsonwebtoken accepts a KeyObject; passport-jwt's types predate that.
      secretOrKey: accessTokens.key as unknown as Buffer,
      algorithms: algorithms ? [...algorithms] : ['HS256'],
      issuer: issuer as string,
      audience: audience as string,
      ignoreExpiration: false,
      passReqToCallback: true,
    });
  }

  validate(request: AuthRequest, payload: unknown): AccessTokenClaims {
    const claims = this.accessTokens.assertClaims(payload);
    request.otpAuth = { claims };
    return claims;
  }
}
