import { Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AccessTokenService } from '../tokens/access-token.service.js';
import { OtpAuthGuard } from './otp-auth.guard.js';
import { isPublicRoute } from './public.decorator.js';

/**
 * {@link OtpAuthGuard} for running globally, and the only guard that reads `@Public()`: register
 * it as `APP_GUARD` (`globalGuard: true` does, or `{ provide: APP_GUARD, useExisting:
 * OtpAuthGlobalGuard }`) and every route needs a valid access token except those marked
 * `@Public()`. On those, a request without a token, or with a bad, expired or revoked one, passes
 * (a stale token must not lock anyone out of signing in); a valid token's claims are still attached.
 *
 * Guards listed with `@UseGuards` (`OtpAuthGuard`, `VerifiedUserGuard`, ...) always enforce, even
 * on `@Public()` routes. Don't list this one there: it is meant for `APP_GUARD` only. For GraphQL,
 * subclass it and override {@link OtpAuthGuard.getRequest}.
 */
@Injectable()
export class OtpAuthGlobalGuard extends OtpAuthGuard {
  constructor(
    accessTokens: AccessTokenService,
    private readonly reflector: Reflector,
  ) {
    super(accessTokens);
  }

  /** `@Public()` routes (method first, then class) pass without a valid token. */
  protected override admitsWithoutToken(context: ExecutionContext): boolean {
    return isPublicRoute(this.reflector, context);
  }
}
