import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  Inject,
  Post,
  Req,
  Res,
  StreamableFile,
  UnauthorizedException,
  UseGuards,
  UsePipes,
  type Type,
} from '@nestjs/common';
import { OTP_HTTP_CONFIG, type HttpConfig } from '../http/refresh-transport.options.js';
import { OTP_AUTH_STORE } from '../store/constants.js';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '../http/openapi.js';
import type { AuthRequest } from '../http/auth-request.js';
import { Public } from '../guards/public.decorator.js';
import { RequireRecentSignIn, TOTP_ENROLLMENT_WINDOW, TOTP_MANAGEMENT_WINDOW } from '../guards/recent-sign-in.guard.js';
import { TokenResponseDto } from '../http/dto.js';
import type { AuthResponse } from '../http/refresh-cookie.js';
import { writeTokenResponse } from '../http/token-response.js';
import { OtpValidationPipe } from '../http/body-validation.pipe.js';
import { JsonBodyGuard, RefreshCookieOriginGuard, SetsRefreshCookie } from '../http/request-guards.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import { INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { SessionService } from '../tokens/session.service.js';
import { OtpRateLimitGuard } from '../rate-limits/otp-rate-limit.guard.js';
import { RateLimited } from '../rate-limits/otp-rate-limiter.js';
import { MfaChallengeService } from './mfa-challenge.service.js';
import {
  BackupCodesResponseDto,
  ManageSecondFactorDto,
  MfaVerifyDto,
  RegeneratedBackupCodesResponseDto,
  SecondFactorDto,
  TotpCodeDto,
  TotpDisabledResponseDto,
  TotpSetupResponseDto,
} from './totp.dto.js';
import { TotpService, type SecondFactorProof } from './totp.service.js';
import { type StoredUser } from '../store/user-store.interface.js';

/** Exactly one of `code` and `backup_code`. */
function proofOf(body: SecondFactorDto): SecondFactorProof {
  if ((body.code === undefined) === (body.backup_code === undefined)) {
    throw new BadRequestException(['give exactly one of code and backup_code']);
  }
  return body.code !== undefined ? { code: body.code } : { backupCode: body.backup_code! };
}

/**
 * The TOTP routes; mounted under `<prefix>/totp` by {@link createTotpController}. JSON bodies only
 * (415 otherwise); `confirm` and `verify` set the refresh cookie, so refuse cross-site requests (403).
 */
@ApiTags('two-factor')
@UseGuards(RefreshCookieOriginGuard, JsonBodyGuard)
@UsePipes(new OtpValidationPipe({ whitelist: true, transform: true }))
export class TotpRoutes {
  constructor(
    @Inject(OTP_HTTP_CONFIG) private readonly config: HttpConfig,
    @Inject(OTP_AUTH_STORE) private readonly store: OtpAuthStore,
    private readonly totp: TotpService,
    private readonly mfa: MfaChallengeService,
    private readonly sessions: SessionService,
  ) {}

  @Post('setup')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @RequireRecentSignIn(TOTP_ENROLLMENT_WINDOW)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Start enrolling an authenticator app (replaces a pending enrolment)' })
  @ApiOkResponse({ type: TotpSetupResponseDto })
  async setup(@Req() request: AuthRequest): Promise<TotpSetupResponseDto> {
    const enrollment = await this.totp.setup(await this.user(request));
    return { secret: enrollment.secret, otpauth_url: enrollment.otpauthUrl, qr_code: enrollment.qrCode };
  }

  @Get('qr')
  @Header('Cache-Control', 'no-store')
  @RequireRecentSignIn(TOTP_ENROLLMENT_WINDOW)
  @ApiBearerAuth()
  @ApiProduces('image/png')
  @ApiOperation({ summary: 'The pending enrolment as a QR code PNG' })
  async qr(@Req() request: AuthRequest): Promise<StreamableFile> {
    const png = await this.totp.pendingQrPng(await this.user(request));
    return new StreamableFile(png, { type: 'image/png', length: png.length });
  }

  @Post('confirm')
  @SetsRefreshCookie()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @RequireRecentSignIn(TOTP_ENROLLMENT_WINDOW)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Activate 2FA with a code; returns backup codes (shown once) and a new session',
    description: 'Every other session of the user is ended: none of them passed the second factor.',
  })
  async confirm(
    @Req() request: AuthRequest,
    @Body() body: TotpCodeDto,
    @Res({ passthrough: true }) response: AuthResponse,
  ): Promise<BackupCodesResponseDto & TokenResponseDto> {
    const user = await this.user(request);
    const backupCodes = await this.totp.confirm(user.id, body.code);
    const amr = request.otpAuth!.claims.amr.filter((m) => m !== 'totp');
    const tokens = await this.sessions.issue(user, [...amr, 'totp']);
    return { backup_codes: backupCodes, ...writeTokenResponse(this.config, tokens, response) };
  }

  @Post('disable')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  // A stolen session must not be able to remove the second factor: a recent sign-in as well as a code.
  @RequireRecentSignIn(TOTP_MANAGEMENT_WINDOW)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Turn 2FA off; needs a recent sign-in and a current code or a backup code',
    description: 'With `end_other_sessions: true`, every other session of the user ends too.',
  })
  @ApiOkResponse({ type: TotpDisabledResponseDto })
  async disable(@Req() request: AuthRequest, @Body() body: ManageSecondFactorDto): Promise<TotpDisabledResponseDto> {
    const { sub, sid } = request.otpAuth!.claims;
    await this.totp.disable(sub, proofOf(body));
    const revoked = body.end_other_sessions === true ? await this.totp.endOtherSessions(sub, sid) : 0;
    return { message: 'Two-factor authentication disabled', revoked_sessions: revoked };
  }

  @Post('backup-codes')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @RequireRecentSignIn(TOTP_MANAGEMENT_WINDOW)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Replace the backup codes; needs a recent sign-in and a current code or a backup code',
    description: 'With `end_other_sessions: true`, every other session of the user ends too.',
  })
  @ApiOkResponse({ type: RegeneratedBackupCodesResponseDto })
  async regenerate(
    @Req() request: AuthRequest,
    @Body() body: ManageSecondFactorDto,
  ): Promise<RegeneratedBackupCodesResponseDto> {
    const { sub, sid } = request.otpAuth!.claims;
    const codes = await this.totp.regenerateBackupCodes(sub, proofOf(body));
    const revoked = body.end_other_sessions === true ? await this.totp.endOtherSessions(sub, sid) : 0;
    return { backup_codes: codes, revoked_sessions: revoked };
  }

  @Post('verify')
  @Public() // the second sign-in step: the mfa_token is the credential
  @SetsRefreshCookie()
  @RateLimited('verify')
  @UseGuards(OtpRateLimitGuard)
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Complete sign-in: mfa_token plus a TOTP code or a backup code' })
  @ApiOkResponse({ type: TokenResponseDto })
  async verify(
    @Body() body: MfaVerifyDto,
    @Res({ passthrough: true }) response: AuthResponse,
  ): Promise<TokenResponseDto> {
    const tokens = await this.mfa.complete(body.mfa_token, proofOf(body));
    return writeTokenResponse(this.config, tokens, response);
  }

  private async user(request: AuthRequest): Promise<StoredUser> {
    const user = await this.store.findUserById(request.otpAuth!.claims.sub);
    if (!user) throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    return user;
  }
}

/** The TOTP routes under `<prefix>/totp`. */
export function createTotpController(prefix: string): Type<TotpRoutes> {
  class TotpController extends TotpRoutes {}
  Controller(`${prefix}/totp`)(TotpController);
  return TotpController;
}
