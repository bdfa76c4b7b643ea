import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { bearerToken, httpRequest } from './auth-request.js';

/**
 * Admits requests with a valid, unrevoked access token in `Authorization: Bearer`.
 * No database round-trip: revocation is checked against the in-memory revocation list.
 */
@Injectable()
export class OtpAuthGuard implements CanActivate {
  constructor(private readonly accessTokens: AccessTokenService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = httpRequest(context);
    const token = bearerToken(request);
    if (token === undefined) throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    // Keep what an earlier guard of this request attached (VerifiedUserGuard's user): a
    // controller-level VerifiedUserGuard runs before a method-level @RequireMfa() or
    // @RequireRecentSignIn(), which start with this guard again.
    request.otpAuth = { ...request.otpAuth, claims: this.accessTokens.verify(token) };
    return true;
  }
}
