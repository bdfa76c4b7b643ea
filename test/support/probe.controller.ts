import { Body, Controller, Get, HttpCode, Post, UnauthorizedException, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import {
  isMfaChallenge,
  OtpAuthService,
  RequireMfa,
  RequireRecentSignIn,
  Claims,
  CurrentUser,
  OtpAuthGuard,
  OtpRateLimitGuard,
  RateLimited,
  TokenClaims,
  VerifiedUserGuard,
  type AccessTokenClaims,
} from 'nestjs-otp-auth';
import { OTP_JWT_STRATEGY } from 'nestjs-otp-auth/passport';
import type { TestUser } from './test-user.entity.js';

/** The trivial first factor of the fixture app: one shared password. */
export const FIXTURE_PASSWORD = 'correct horse battery staple';

/** Routes the e2e tests call: one per guard, and a fixture first factor. */
@Controller()
export class ProbeController {
  constructor(private readonly auth: OtpAuthService) {}

  /** An app with its own first factor (a password) using the module for TOTP and sessions. */
  @Post('password-login')
  @HttpCode(200)
  async passwordLogin(@Body() body: { email?: string; password?: string }): Promise<Record<string, unknown>> {
    const user = typeof body.email === 'string' ? await this.auth.findUserByEmail(body.email) : null;
    if (!user || body.password !== FIXTURE_PASSWORD) throw new UnauthorizedException('Wrong email or password');
    const result = await this.auth.signInWithFirstFactor(user, ['pwd']);
    if (isMfaChallenge(result)) return { mfa_required: true, mfa_token: result.mfaToken };
    return { access_token: result.accessToken };
  }

  @Get('mfa-only')
  @RequireMfa()
  mfaOnly(@TokenClaims() claims: AccessTokenClaims): { amr: readonly string[] } {
    return { amr: claims.amr };
  }

  /** An application's own sensitive action (say, changing the email address). */
  @Post('sensitive')
  @HttpCode(200)
  @RequireRecentSignIn(60)
  sensitive(): { done: true } {
    return { done: true };
  }

  @Get('protected')
  @UseGuards(OtpAuthGuard)
  protected(@TokenClaims() claims: AccessTokenClaims): { sub: string; sid: string } {
    return { sub: claims.sub, sid: claims.sid };
  }

  @Get('verified-only')
  @UseGuards(VerifiedUserGuard)
  verified(@CurrentUser() user: TestUser): { id: number; email: string } {
    return { id: user.id, email: user.email };
  }

  @Get('claims')
  @UseGuards(OtpAuthGuard)
  claims(@Claims() claims: Record<string, unknown>): Record<string, unknown> {
    return claims;
  }

  @Get('passport')
  @UseGuards(AuthGuard(OTP_JWT_STRATEGY))
  passport(@TokenClaims() claims: AccessTokenClaims): { sub: string } {
    return { sub: claims.sub };
  }
}

/** An app's own routes limited as a whole: `@RateLimited` on the class. */
@Controller('limited-class')
@RateLimited('verify')
@UseGuards(OtpRateLimitGuard)
export class LimitedClassController {
  @Post('ping')
  ping(): { ok: true } {
    return { ok: true };
  }
}

/** The README's pattern: VerifiedUserGuard on the controller, a step-up guard on one route. */
@Controller('account')
@UseGuards(VerifiedUserGuard)
export class AccountController {
  @Post('delete')
  @HttpCode(200)
  @RequireRecentSignIn(60)
  delete(@CurrentUser() user: TestUser): { deleted: string } {
    return { deleted: user.email };
  }
}
