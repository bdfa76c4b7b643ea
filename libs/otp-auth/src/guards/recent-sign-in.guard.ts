import {
  applyDecorators,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { OTP_GUARD_CONFIG, type GuardConfig } from './guard.config.js';
import { Reflector } from '@nestjs/core';
import { ApiUnauthorizedResponse } from '../http/openapi.js';
import type { AuthResponse } from '../http/refresh-cookie.js';
import { INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import type { AuthRequest } from '../http/auth-request.js';
import { OtpAuthGuard } from './otp-auth.guard.js';

/** Route metadata: the largest sign-in age (seconds) {@link RecentSignInGuard} admits. */
export const RECENT_SIGN_IN_MAX_AGE = 'otp-auth:recent-sign-in-max-age';

/** Default window of {@link RequireRecentSignIn}: 15 minutes. */
export const DEFAULT_RECENT_SIGN_IN_MAX_AGE = 900;

/** Metadata value of the module's TOTP enrolment routes: the window is `totp.enrollmentMaxAuthAge`. */
export const TOTP_ENROLLMENT_WINDOW = 'totp-enrollment';

/**
 * Metadata value of the module's `totp/disable` and `totp/backup-codes` routes: the window is
 * `totp.managementMaxAuthAge`.
 */
export const TOTP_MANAGEMENT_WINDOW = 'totp-management';

/** A {@link RequireRecentSignIn} window: seconds, or one of the module's TOTP settings. */
export type RecentSignInWindow = number | typeof TOTP_ENROLLMENT_WINDOW | typeof TOTP_MANAGEMENT_WINDOW;

/** The RFC 9470 error code of a session whose sign-in is too old for the route. */
export const INSUFFICIENT_USER_AUTHENTICATION = 'insufficient_user_authentication';

/** `900` → `15 minutes`, `3600` → `hour`, `45` → `45 seconds` (as in "the last …"). */
function describeSeconds(seconds: number): string {
  const [amount, unit] =
    seconds % 3600 === 0
      ? [seconds / 3600, 'hour']
      : seconds % 60 === 0
        ? [seconds / 60, 'minute']
        : [seconds, 'second'];
  return amount === 1 ? unit : `${amount} ${unit}s`;
}

/**
 * Admits requests whose session signed in at most N seconds ago (the access token's `auth_time`,
 * which refreshing keeps), so a stolen access or refresh token alone cannot perform the action.
 * N comes from {@link RequireRecentSignIn} (the TOTP enrolment routes: `totp.enrollmentMaxAuthAge`;
 * `disable` and `backup-codes`: `totp.managementMaxAuthAge`). Otherwise 401 with
 * the RFC 9470 step-up answer: `WWW-Authenticate: Bearer error="insufficient_user_authentication",
 * max_age=N`; the client signs in again (refreshing does not help). Run after `OtpAuthGuard`.
 */
@Injectable()
export class RecentSignInGuard implements CanActivate {
  constructor(
    @Inject(OTP_GUARD_CONFIG) private readonly config: GuardConfig,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const window = this.reflector.getAllAndOverride<RecentSignInWindow | undefined>(RECENT_SIGN_IN_MAX_AGE, [
      context.getHandler(),
      context.getClass(),
    ]);
    const maxAge =
      window === TOTP_ENROLLMENT_WINDOW
        ? this.config.totp.enrollmentMaxAuthAge
        : window === TOTP_MANAGEMENT_WINDOW
          ? this.config.totp.managementMaxAuthAge
          : (window ?? DEFAULT_RECENT_SIGN_IN_MAX_AGE);
    const claims = this.getRequest(context)?.otpAuth?.claims;
    if (!claims) throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    if (maxAge === null) return true;
    // Tokens without auth_time come from versions before it existed: treated as old.
    const authTime = claims.auth_time;
    // Whole seconds, as auth_time itself.
    if (authTime !== undefined && Math.floor(this.config.clock() / 1000) - authTime <= maxAge) return true;
    this.getResponse(context).header(
      'WWW-Authenticate',
      `Bearer error="${INSUFFICIENT_USER_AUTHENTICATION}", error_description="A more recent sign-in is required", max_age=${maxAge}`,
    );
    throw new UnauthorizedException({
      statusCode: 401,
      error: INSUFFICIENT_USER_AUTHENTICATION,
      message: `Sign in again: this needs a sign-in from the last ${describeSeconds(maxAge)}.`,
    });
  }

  /**
   * The request the auth guard attached the claims to; override it as in that guard (GraphQL:
   * `GqlExecutionContext.create(context).getContext().req`).
   * @default context.switchToHttp().getRequest()
   */
  protected getRequest(context: ExecutionContext): AuthRequest {
    return context.switchToHttp().getRequest<AuthRequest>();
  }

  /**
   * The response that gets the `WWW-Authenticate` step-up header (GraphQL: the `res` of the
   * GraphQL context, if the app puts it there).
   * @default context.switchToHttp().getResponse()
   */
  protected getResponse(context: ExecutionContext): AuthResponse {
    return context.switchToHttp().getResponse<AuthResponse>();
  }
}

/**
 * Requires a valid access token whose session signed in at most `maxAgeSeconds` ago (default
 * 900, whatever `totp.enrollmentMaxAuthAge` says): for actions a stolen token must not be able to take, such as
 * enrolling an authenticator or turning it off (the module's TOTP routes use it, with
 * {@link TOTP_ENROLLMENT_WINDOW} and {@link TOTP_MANAGEMENT_WINDOW}), changing the email address or
 * deleting the account. A token stolen within the window still passes; the window bounds that.
 */
export function RequireRecentSignIn(
  maxAgeSeconds: RecentSignInWindow = DEFAULT_RECENT_SIGN_IN_MAX_AGE,
): MethodDecorator & ClassDecorator {
  if (
    maxAgeSeconds !== TOTP_ENROLLMENT_WINDOW &&
    maxAgeSeconds !== TOTP_MANAGEMENT_WINDOW &&
    (!Number.isInteger(maxAgeSeconds) || maxAgeSeconds < 1)
  ) {
    throw new Error(`RequireRecentSignIn: maxAgeSeconds must be a positive integer (got ${String(maxAgeSeconds)}).`);
  }
  return applyDecorators(
    SetMetadata(RECENT_SIGN_IN_MAX_AGE, maxAgeSeconds),
    UseGuards(OtpAuthGuard, RecentSignInGuard),
    ApiUnauthorizedResponse({
      description: `No valid access token, or \`${INSUFFICIENT_USER_AUTHENTICATION}\`: the sign-in is older than \`max_age\` (see WWW-Authenticate); sign in again, refreshing does not help.`,
    }),
  );
}
