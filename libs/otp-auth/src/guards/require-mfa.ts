import {
  applyDecorators,
  ForbiddenException,
  Injectable,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { hasSecondFactor } from '../tokens/amr.js';
import type { AuthRequest } from '../http/auth-request.js';
import { OtpAuthGuard } from './otp-auth.guard.js';

/** The message of a valid session that lacks the second factor a route demands. */
export const MFA_REQUIRED_MESSAGE = 'Two-factor authentication required';

/** Admits requests whose session passed a second factor (TOTP or a backup code). Run after an auth guard. */
@Injectable()
export class MfaGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const claims = this.getRequest(context)?.otpAuth?.claims;
    if (!hasSecondFactor(claims?.amr)) throw new ForbiddenException(MFA_REQUIRED_MESSAGE);
    return true;
  }

  /**
   * The request the auth guard attached the claims to; override it as in that guard (GraphQL:
   * `GqlExecutionContext.create(context).getContext().req`).
   * @default context.switchToHttp().getRequest()
   */
  protected getRequest(context: ExecutionContext): AuthRequest {
    return context.switchToHttp().getRequest<AuthRequest>();
  }
}

/** Requires a valid access token from a session that passed the second factor (401, then 403). */
export function RequireMfa(): MethodDecorator & ClassDecorator {
  return applyDecorators(UseGuards(OtpAuthGuard, MfaGuard));
}
