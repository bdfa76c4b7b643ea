import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { OTP_AUTH_CONFIG } from '../otp-auth.constants.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { hasSecondFactor } from '../totp/totp.service.js';
import { bearerToken, httpRequest } from './auth-request.js';
import { MFA_REQUIRED_MESSAGE } from './require-mfa.js';

/**
 * Like {@link OtpAuthGuard}, and also loads the user: it must still exist and be verified.
 * The user is then available through `@CurrentUser()`.
 */
@Injectable()
export class VerifiedUserGuard implements CanActivate {
  constructor(
    private readonly accessTokens: AccessTokenService,
    @Inject(OTP_AUTH_CONFIG) private readonly config: ResolvedOtpAuthOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = httpRequest(context);
    const token = bearerToken(request);
    if (token === undefined) throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
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
}
