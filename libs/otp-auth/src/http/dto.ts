import { ApiProperty, ApiPropertyOptional } from './openapi.js';
import { Transform } from 'class-transformer';
import { normalizeEmail } from '../codes/normalize-email.js';
import {
  isEmail,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateBy,
  ValidateIf,
  type ValidationOptions,
} from 'class-validator';

const trimLower = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? normalizeEmail(value) : value;

/**
 * Optional, but validated when present: unlike `@IsOptional()`, `null` counts as present and so
 * fails the field's other rules (400). Code that tells "given" from "not given" by `undefined`
 * would otherwise receive a `null` it never expected (the input fuzzing found a 500 that way).
 */
export function IsAbsentOrValid(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
}

/** An unpaired UTF-16 surrogate (JSON can carry one as `"\ud800"`). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `@IsEmail()` that refuses a string with a lone surrogate instead of throwing: validator.js
 * measures the parts of an address with `encodeURI`, which throws `URIError` on one (a 500).
 */
function IsEmailAddress(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isEmail',
      validator: { validate: (value) => typeof value === 'string' && !LONE_SURROGATE.test(value) && isEmail(value) },
    },
    options,
  );
}

/** Body of `POST /request-otp`. */
export class RequestOtpDto {
  @ApiProperty({ example: 'user@example.com', description: 'Trimmed and lower-cased before use.' })
  @Transform(trimLower)
  @IsString({ message: 'email must be a string' })
  @MaxLength(254, { message: 'email must be at most 254 characters' })
  @IsEmailAddress({ message: 'email must be a valid email address' })
  email!: string;
}

/** Body of `POST /request-otp`: an address and, optionally, the language of the message. */
export class RequestOtpBodyDto extends RequestOtpDto {
  @ApiPropertyOptional({
    example: 'de-CH',
    description: 'BCP 47 language tag for the message; default the app default.',
  })
  @IsOptional()
  @IsString({ message: 'locale must be a string' })
  @Matches(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/, { message: 'locale must be a language tag such as en or de-CH' })
  locale?: string;
}

/** Body of `POST /verify-otp`. */
export class VerifyOtpDto extends RequestOtpDto {
  @ApiProperty({ example: '123456', description: 'The digits received by email.' })
  @IsString({ message: 'code must be a string' })
  @Matches(/^\d{4,10}$/, { message: 'code must be 4 to 10 digits' })
  code!: string;
}

/** Body of `POST /refresh` and `POST /logout` for clients that keep the refresh token themselves. */
export class RefreshTokenBodyDto {
  @ApiPropertyOptional({ description: 'Needed only when the token is not sent as a cookie.' })
  @IsOptional()
  @IsString({ message: 'refresh_token must be a string' })
  @MaxLength(512, { message: 'refresh_token must be at most 512 characters' })
  refresh_token?: string;
}

/** Answer of `POST /request-otp`. */
export class RequestOtpResponseDto {
  @ApiProperty({ example: 'If the address can sign in, a code is on its way.' })
  message!: string;

  @ApiProperty({ example: 600, description: 'Code lifetime in seconds.' })
  expires_in!: number;

  @ApiPropertyOptional({ example: '000000', description: 'Developer mode only.' })
  dev_code?: string;
}

/** Answer of `POST /verify-otp` and `POST /refresh`. */
export class TokenResponseDto {
  @ApiProperty()
  access_token!: string;

  @ApiProperty({ example: 'bearer' })
  token_type!: 'bearer';

  @ApiProperty({ example: 3600, description: 'Access-token lifetime in seconds.' })
  expires_in!: number;

  @ApiPropertyOptional({ description: 'Present when refresh tokens are delivered in the body.' })
  refresh_token?: string;
}

/** Answer of `POST /verify-otp` for a user with TOTP: complete it with `POST /totp/verify`. */
export class MfaRequiredResponseDto {
  @ApiProperty({ example: true })
  mfa_required!: true;

  @ApiProperty({ description: 'Short-lived, single-use; accepted only by POST /totp/verify.' })
  mfa_token!: string;

  @ApiProperty({ example: 300, description: 'Lifetime of the mfa_token in seconds.' })
  expires_in!: number;
}
