import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { OTP_AUTH_CONFIG } from '../otp-auth.constants.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { hasSecondFactor } from '../totp/totp.service.js';
import { bearerToken, warnIfNoHttpRequest, type AuthRequest } from './auth-request.js';
import { isPublicRoute } from './public.decorator.js';
import { MFA_REQUIRED_MESSAGE } from './require-mfa.js';

/**
 * Like {@link OtpAuthGuard}, and also loads the user: it must still exist and be verified.
 * The user is then available through `@CurrentUser()`.
 *
 * Routes marked `@Public()` are admitted without a token and without a user lookup, so it can run
 * globally (`{ provide: APP_GUARD, useExisting: VerifiedUserGuard }`). For GraphQL, subclass it
 * and override {@link VerifiedUserGuard.getRequest}.
 */
@Injectable()
export class VerifiedUserGuard implements CanActivate {
  constructor(
    private readonly accessTokens: AccessTokenService,
    @Inject(OTP_AUTH_CONFIG) private readonly config: ResolvedOtpAuthOptions,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = this.getRequest(context);
    const token = bearerToken(request);
    if (token === undefined) {
      if (isPublicRoute(this.reflector, context)) return true;
      warnIfNoHttpRequest(request, context, 'VerifiedUserGuard');
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    let claims: AccessTokenClaims;
    try {
      claims = this.accessTokens.verify(token);
    } catch (error) {
      if (isPublicRoute(this.reflector, context)) return true;
      throw error;
    }
    // A public route must not depend on the database (an outage, a deleted user): no lookup.
    if (isPublicRoute(this.reflector, context)) {
      request.otpAuth = { ...request.otpAuth, claims };
      return true;
    }
    const user = await this.config.store.findUserById(claims.sub);
    if (!user || !user.isVerified) throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    // Users the app marks as needing 2FA get nowhere with a one-factor session.
    if (!hasSecondFactor(claims.amr) && this.config.totp.required(user.entity)) {
      throw new ForbiddenException(MFA_REQUIRED_MESSAGE);
    }
    request.otpAuth = { claims, user: user.entity };
    return true;
  }

  /**
   * The request to read the token from and attach the claims and user to. Override it where the
   * request is not the HTTP one, e.g. GraphQL: `GqlExecutionContext.create(context).getContext().req`.
   * @default context.switchToHttp().getRequest()
   */
  protected getRequest(context: ExecutionContext): AuthRequest {
    return context.switchToHttp().getRequest<AuthRequest>();
  }
}
