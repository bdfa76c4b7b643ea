import { Controller, Get, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import {
  Claims,
  CurrentUser,
  OTP_JWT_STRATEGY,
  OtpAuthGuard,
  TokenClaims,
  VerifiedUserGuard,
  type AccessTokenClaims,
} from 'nestjs-otp-auth';
import type { TestUser } from './test-user.entity.js';

/** Protected routes the e2e tests call, one per guard. */
@Controller()
export class ProbeController {
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
