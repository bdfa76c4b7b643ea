import { Controller, Get, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import {
  Claims,
  CurrentUser,
  OtpAuthGuard,
  TokenClaims,
  VerifiedUserGuard,
  type AccessTokenClaims,
} from 'nestjs-otp-auth';
import type { SampleUser } from './sample-user.js';

/** Answer of `GET /protected`. */
export class ProtectedResponseDto {
  @ApiProperty({ example: '1', description: 'The `sub` claim: the user id, as a string.' })
  user_id!: string;

  @ApiProperty({ description: 'The `sid` claim: the session (refresh-token family) of the token.' })
  session_id!: string;
}

/** Answer of `GET /verified-only`. */
export class VerifiedOnlyResponseDto {
  @ApiProperty({ example: 'Access granted to verified user' })
  message!: string;

  @ApiProperty({ example: 1, description: 'The user id: a number on SQL databases, an ObjectId string on MongoDB.' })
  user_id!: number | string;

  @ApiProperty({ example: 'user@example.com' })
  email!: string;
}

/** Answer of `GET /claims`. */
export class ClaimsResponseDto {
  @ApiProperty({ example: { display_name: null }, description: 'What `getAdditionalClaims` added to the token.' })
  custom_claims!: Record<string, unknown>;
}

/**
 * Routes showing the three ways to protect a handler: a token check only, a token check plus
 * a user lookup, and reading custom claims.
 */
@ApiTags('example')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, invalid, expired or revoked access token.' })
@Controller()
export class ExampleController {
  /** Needs a valid access token; answers from its claims without touching the database. */
  @Get('protected')
  @UseGuards(OtpAuthGuard)
  @ApiOperation({ summary: 'Any valid access token' })
  @ApiOkResponse({ type: ProtectedResponseDto })
  protectedRoute(@TokenClaims() claims: AccessTokenClaims): ProtectedResponseDto {
    return { user_id: claims.sub, session_id: claims.sid };
  }

  /** Also loads the user, so a deleted or unverified user is refused even with a valid token. */
  @Get('verified-only')
  @UseGuards(VerifiedUserGuard)
  @ApiOperation({ summary: 'A valid access token of a user that still exists and is verified' })
  @ApiOkResponse({ type: VerifiedOnlyResponseDto })
  verifiedOnly(@CurrentUser() user: SampleUser): VerifiedOnlyResponseDto {
    return { message: 'Access granted to verified user', user_id: user.id, email: user.email };
  }

  /** The custom claims of the token (here `display_name`), without the registered ones. */
  @Get('claims')
  @UseGuards(OtpAuthGuard)
  @ApiOperation({ summary: 'The custom claims of the access token' })
  @ApiOkResponse({ type: ClaimsResponseDto })
  claims(@Claims() customClaims: Record<string, unknown>): ClaimsResponseDto {
    return { custom_claims: customClaims };
  }
}
