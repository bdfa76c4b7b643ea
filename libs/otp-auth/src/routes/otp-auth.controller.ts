import type { IncomingMessage } from 'node:http';
import { OTP_HTTP_CONFIG, type HttpConfig } from '../http/refresh-transport.options.js';
import {
  Body,
  Controller,
  Header,
  HttpCode,
  Inject,
  Post,
  Req,
  Res,
  UnauthorizedException,
  UseGuards,
  UsePipes,
  type Type,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '../http/openapi.js';
import { bearerToken, type AuthRequest } from '../http/auth-request.js';
import { OtpAuthGuard } from '../guards/otp-auth.guard.js';
import { Public } from '../guards/public.decorator.js';
import { OtpAuthService } from '../otp-auth.service.js';
import { AccessTokenService } from '../tokens/access-token.service.js';
import { INVALID_REFRESH_MESSAGE, type SessionTokens } from '../tokens/session.service.js';
import {
  MfaRequiredResponseDto,
  RefreshTokenBodyDto,
  RequestOtpBodyDto,
  RequestOtpResponseDto,
  TokenResponseDto,
  VerifyOtpDto,
} from '../http/dto.js';
import { clearRefreshCookie, refreshTokenFromCookie, type AuthResponse } from '../http/refresh-cookie.js';
import { JsonBodyGuard, RefreshCookieOriginGuard, SetsRefreshCookie } from '../http/request-guards.js';
import { writeTokenResponse } from '../http/token-response.js';
import { OtpValidationPipe } from '../http/body-validation.pipe.js';
import { isMfaChallenge } from '../sign-in/sign-in-result.js';
import { OtpRateLimitGuard } from '../rate-limits/otp-rate-limit.guard.js';
import { RateLimited } from '../rate-limits/otp-rate-limiter.js';
import { resolveClientIp } from '../rate-limits/client-ip.js';

const REQUEST_OTP_MESSAGE = 'If the address can sign in, a code is on its way.';

/**
 * The auth routes; mounted under the configured prefix by {@link createOtpAuthController}. JSON
 * bodies only (415 otherwise); routes that set or clear the refresh cookie refuse cross-site
 * requests (403).
 */
@ApiTags('auth')
@UseGuards(RefreshCookieOriginGuard, JsonBodyGuard)
@UsePipes(new OtpValidationPipe({ whitelist: true, transform: true, stopAtFirstError: false }))
export class OtpAuthRoutes {
  constructor(
    @Inject(OTP_HTTP_CONFIG) private readonly config: HttpConfig,
    private readonly auth: OtpAuthService,
    private readonly accessTokens: AccessTokenService,
  ) {}

  @Post('request-otp')
  @Public()
  @RateLimited('send')
  @UseGuards(OtpRateLimitGuard)
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Send a sign-in code to an email address' })
  @ApiOkResponse({ type: RequestOtpResponseDto, description: 'Same answer for every address.' })
  @ApiTooManyRequestsResponse({ description: 'Inside the resend cooldown, or over a rate limit; see Retry-After.' })
  @ApiServiceUnavailableResponse({ description: 'The code could not be delivered; nothing was stored.' })
  async requestOtp(@Req() request: AuthRequest, @Body() body: RequestOtpBodyDto): Promise<RequestOtpResponseDto> {
    const result = await this.auth.requestOtp(body.email, { locale: body.locale, ip: this.clientIp(request) });
    if (result.developerCode !== undefined) {
      return {
        message: `Developer mode: your code is ${result.developerCode}.`,
        expires_in: result.expiresIn,
        dev_code: result.developerCode,
      };
    }
    return { message: REQUEST_OTP_MESSAGE, expires_in: result.expiresIn };
  }

  @Post('verify-otp')
  @Public()
  @SetsRefreshCookie()
  @RateLimited('verify')
  @UseGuards(OtpRateLimitGuard)
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Exchange a code for an access token and a refresh token' })
  @ApiOkResponse({ type: TokenResponseDto, description: 'Tokens, or `{mfa_required, mfa_token}` for users with TOTP.' })
  @ApiUnauthorizedResponse({ description: 'Wrong, expired, used or locked code, or unknown address.' })
  async verifyOtp(
    @Req() request: AuthRequest,
    @Body() body: VerifyOtpDto,
    @Res({ passthrough: true }) response: AuthResponse,
  ): Promise<TokenResponseDto | MfaRequiredResponseDto> {
    const result = await this.auth.verifyOtp(body.email, body.code, { ip: this.clientIp(request) });
    if (isMfaChallenge(result)) {
      return { mfa_required: true, mfa_token: result.mfaToken, expires_in: result.expiresIn };
    }
    return this.tokenResponse(result, response);
  }

  @Post('refresh')
  @Public() // the refresh token is the credential; the access token has usually expired
  @SetsRefreshCookie()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Rotate the refresh token and get a new access token' })
  @ApiOkResponse({ type: TokenResponseDto })
  @ApiUnauthorizedResponse({ description: 'Missing, invalid, expired, revoked or reused refresh token.' })
  async refresh(
    @Req() request: AuthRequest,
    @Body() body: RefreshTokenBodyDto,
    @Res({ passthrough: true }) response: AuthResponse,
  ): Promise<TokenResponseDto> {
    const token = this.presentedRefreshToken(request, body);
    if (!token) throw new UnauthorizedException(INVALID_REFRESH_MESSAGE);
    return this.tokenResponse(await this.auth.refresh(token), response);
  }

  @Post('logout')
  @Public() // a cookie or body token alone may end the session
  @SetsRefreshCookie()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'End the session (refresh token and presented access token); 200 unless cross-site' })
  async logout(
    @Req() request: AuthRequest,
    @Body() body: RefreshTokenBodyDto,
    @Res({ passthrough: true }) response: AuthResponse,
  ): Promise<{ message: string }> {
    const access = this.accessTokens.tryVerify(bearerToken(request));
    const fromCookie = this.cookieToken(request);
    await this.auth.logout(fromCookie ?? this.bodyToken(body), access);
    // Only a cookie that was presented (and, past the guard, same-site) is cleared.
    if (fromCookie !== undefined) clearRefreshCookie(response, this.config.cookie);
    return { message: 'Logged out' };
  }

  @Post('logout-all')
  @SetsRefreshCookie()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @UseGuards(OtpAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'End every session of the signed-in user' })
  async logoutAll(
    @Req() request: AuthRequest,
    @Res({ passthrough: true }) response: AuthResponse,
  ): Promise<{ message: string; revoked_sessions: number }> {
    // OtpAuthGuard has run, so the claims are there.
    const claims = request.otpAuth!.claims;
    const revoked = await this.auth.logoutAll(claims.sub);
    if (this.cookieToken(request) !== undefined) clearRefreshCookie(response, this.config.cookie);
    return { message: 'Logged out everywhere', revoked_sessions: revoked };
  }

  /** The client's address as the rate limits see it (`rateLimits.trustProxy`). */
  private clientIp(request: AuthRequest): string | undefined {
    const raw = (request as { raw?: IncomingMessage }).raw ?? (request as unknown as IncomingMessage);
    return resolveClientIp(raw, this.config.rateLimits.trustProxy);
  }

  /** Cookie first (when cookies are in use), then body (when bodies are). */
  private presentedRefreshToken(request: AuthRequest, body: RefreshTokenBodyDto | undefined): string | undefined {
    return this.cookieToken(request) ?? this.bodyToken(body);
  }

  /** The refresh cookie, when cookies are in use. Cross-site requests never get here (RefreshCookieOriginGuard). */
  private cookieToken(request: AuthRequest): string | undefined {
    return this.config.refreshTokenDelivery !== 'body'
      ? refreshTokenFromCookie(request, this.config.cookie)
      : undefined;
  }

  private bodyToken(body: RefreshTokenBodyDto | undefined): string | undefined {
    return this.config.refreshTokenDelivery !== 'cookie' ? body?.refresh_token || undefined : undefined;
  }

  private tokenResponse(tokens: SessionTokens, response: AuthResponse): TokenResponseDto {
    return writeTokenResponse(this.config, tokens, response);
  }
}

/** The routes under a prefix; a fresh class per module so several prefixes can coexist. */
export function createOtpAuthController(prefix: string): Type<OtpAuthRoutes> {
  class OtpAuthController extends OtpAuthRoutes {}
  Controller(prefix)(OtpAuthController);
  return OtpAuthController;
}
