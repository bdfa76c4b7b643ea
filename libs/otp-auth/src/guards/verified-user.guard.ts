import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { OTP_GUARD_CONFIG, type GuardConfig } from './guard.config.js';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { hasSecondFactor } from '../tokens/amr.js';
import { bearerToken, warnIfNoHttpRequest, type AuthRequest } from '../http/auth-request.js';
import { MFA_REQUIRED_MESSAGE } from './require-mfa.js';

/**
 * Like {@link OtpAuthGuard}, and also loads the user: it must still exist and be verified.
 * The user is then available through `@CurrentUser()`.
 *
 * It always enforces, also on routes marked `@Public()`: that mark is read only by the global
 * guard, {@link OtpAuthGlobalGuard}. Listed with `@UseGuards` on a `@Public()` route or
 * controller, it still needs a valid token and a verified user. For GraphQL, subclass it and
 * override {@link VerifiedUserGuard.getRequest}.
 */
@Injectable()
export class VerifiedUserGuard implements CanActivate {
  constructor(
    private readonly accessTokens: AccessTokenService,
    @Inject(OTP_GUARD_CONFIG) private readonly config: GuardConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = this.getRequest(context);
    const token = bearerToken(request);
    if (token === undefined) {
      warnIfNoHttpRequest(request, context, 'VerifiedUserGuard');
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    const claims = this.accessTokens.verify(token);
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
