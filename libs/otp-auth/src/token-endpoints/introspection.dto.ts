import { ApiProperty, ApiPropertyOptional } from '../http/openapi.js';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';

/** Body of `POST /introspect` (JSON or `application/x-www-form-urlencoded`, RFC 7662 §2.1). */
export class IntrospectionRequestDto {
  @ApiProperty({ description: 'The access token to check.' })
  @IsString({ message: 'token must be a string' })
  @MaxLength(8192, { message: 'token must be at most 8192 characters' })
  token!: string;

  @ApiPropertyOptional({ enum: ['access_token', 'refresh_token'] })
  @IsOptional()
  @IsIn(['access_token', 'refresh_token'], { message: 'token_type_hint must be access_token or refresh_token' })
  token_type_hint?: string;
}

/** Answer of `POST /introspect` (RFC 7662 §2.2): `{active: false}` alone, or the token's claims. */
export class IntrospectionResponseDto {
  @ApiProperty()
  active!: boolean;

  @ApiPropertyOptional({ example: 'access_token' })
  token_type?: 'access_token';

  @ApiPropertyOptional({ description: 'The user id.' })
  sub?: string;

  @ApiPropertyOptional()
  exp?: number;

  @ApiPropertyOptional()
  iat?: number;

  @ApiPropertyOptional()
  iss?: string;

  @ApiPropertyOptional()
  aud?: string;

  @ApiPropertyOptional()
  jti?: string;

  @ApiPropertyOptional({ description: 'Session id.' })
  sid?: string;

  @ApiPropertyOptional({ type: [String], example: ['otp', 'totp'] })
  amr?: string[];

  @ApiPropertyOptional({ description: 'When the session signed in (epoch seconds); refreshing keeps it.' })
  auth_time?: number;

  /** Custom claims from `getAdditionalClaims`. */
  [custom: string]: unknown;
}
