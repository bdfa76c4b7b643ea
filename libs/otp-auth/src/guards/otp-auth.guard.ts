import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { bearerToken, warnIfNoHttpRequest, type AuthRequest } from './auth-request.js';
import { isPublicRoute } from './public.decorator.js';

/**
 * Admits requests with a valid, unrevoked access token in `Authorization: Bearer`.
 * No database round-trip: revocation is checked against the in-memory revocation list.
 *
 * Routes marked `@Public()` are admitted without one, so the guard can run globally
 * (`globalGuard: true`, or `{ provide: APP_GUARD, useExisting: OtpAuthGuard }`). For GraphQL,
 * subclass it and override {@link OtpAuthGuard.getRequest}.
 */
@Injectable()
export class OtpAuthGuard implements CanActivate {
  constructor(
    private readonly accessTokens: AccessTokenService,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = this.getRequest(context);
    const token = bearerToken(request);
    let claims: AccessTokenClaims;
    if (token === undefined) {
      // The @Public() lookup happens only here and below: requests with a valid token skip it.
      if (isPublicRoute(this.reflector, context)) return true;
      warnIfNoHttpRequest(request, context, 'OtpAuthGuard');
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    try {
      claims = this.accessTokens.verify(token);
    } catch (error) {
      // A stale token must not lock anyone out of a public route (sign-in, refresh, logout).
      if (isPublicRoute(this.reflector, context)) return true;
      throw error;
    }
    // Keep what an earlier guard of this request attached (VerifiedUserGuard's user): a
    // controller-level VerifiedUserGuard runs before a method-level @RequireMfa() or
    // @RequireRecentSignIn(), which start with this guard again.
    request.otpAuth = { ...request.otpAuth, claims };
    return true;
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
