import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { bearerToken, warnIfNoHttpRequest, type AuthRequest } from '../http/auth-request.js';

/**
 * Admits requests with a valid, unrevoked access token in `Authorization: Bearer`.
 * No database round-trip: revocation is checked against the in-memory revocation list.
 *
 * It always enforces, also on routes marked `@Public()`: that mark is read only by the global
 * guard, {@link OtpAuthGlobalGuard} (`globalGuard: true`). A guard listed with `@UseGuards` on a
 * `@Public()` route or controller still refuses requests without a valid token. For GraphQL,
 * subclass it and override {@link OtpAuthGuard.getRequest}.
 */
@Injectable()
export class OtpAuthGuard implements CanActivate {
  constructor(private readonly accessTokens: AccessTokenService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = this.getRequest(context);
    const token = bearerToken(request);
    let claims: AccessTokenClaims;
    if (token === undefined) {
      if (this.admitsWithoutToken(context)) return true;
      warnIfNoHttpRequest(request, context, this.constructor.name || 'OtpAuthGuard');
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    try {
      claims = this.accessTokens.verify(token);
    } catch (error) {
      if (this.admitsWithoutToken(context)) return true;
      throw error;
    }
    // Keep what an earlier guard of this request attached (VerifiedUserGuard's user): a
    // controller-level VerifiedUserGuard runs before a method-level @RequireMfa() or
    // @RequireRecentSignIn(), which start with this guard again.
    request.otpAuth = { ...request.otpAuth, claims };
    return true;
  }

  /**
   * Whether a request without a valid access token (none, or a bad, expired or revoked one) may
   * pass anyway. Asked only for such requests, so a valid token never pays for it.
   * {@link OtpAuthGlobalGuard} admits `@Public()` routes here.
   * @default false: the guard always enforces
   */
  protected admitsWithoutToken(_context: ExecutionContext): boolean {
    return false;
  }

  /**
   * The request to read the token from and attach the claims to. Override it where the request
   * is not the HTTP one, e.g. GraphQL: `GqlExecutionContext.create(context).getContext().req`.
   * @default context.switchToHttp().getRequest()
   */
  protected getRequest(context: ExecutionContext): AuthRequest {
    return context.switchToHttp().getRequest<AuthRequest>();
  }
}
