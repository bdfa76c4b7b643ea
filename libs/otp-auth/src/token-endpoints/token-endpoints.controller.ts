import {
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  Inject,
  NotFoundException,
  Post,
  Req,
  Res,
  UnauthorizedException,
  UseGuards,
  UsePipes,
  type Type,
} from '@nestjs/common';
import { OTP_TOKEN_ENDPOINT_CONFIG, type TokenEndpointConfig } from './token-endpoint.options.js';
import {
  ApiBearerAuth,
  ApiConsumes,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '../http/openapi.js';
import { bearerToken, type AuthRequest } from '../http/auth-request.js';
import { Public } from '../guards/public.decorator.js';
import type { AuthResponse } from '../http/refresh-cookie.js';
import { OtpValidationPipe } from '../http/body-validation.pipe.js';
import { AcceptsBodyTypes, JsonBodyGuard } from '../http/request-guards.js';
import { AccessTokenService, INVALID_TOKEN_MESSAGE } from '../tokens/access-token.service.js';
import { IntrospectionApiKeys } from './introspection-api-keys.js';
import { IntrospectionRequestDto, IntrospectionResponseDto } from './introspection.dto.js';

/** Header with the user id on a successful `GET /verify`. */
export const AUTH_USER_HEADER = 'x-auth-user';
/** Header with the token's claims as base64url JSON on a successful `GET /verify`. */
export const AUTH_CLAIMS_HEADER = 'x-auth-claims';

/**
 * Token endpoints for other services: RFC 7662 introspection (API-key protected, off until keys
 * are configured) and `GET /verify` for nginx `auth_request` and other gateways. `POST` bodies are
 * JSON, or form-encoded for introspection (415 otherwise).
 */
@ApiTags('tokens')
@UseGuards(JsonBodyGuard)
@UsePipes(new OtpValidationPipe({ whitelist: true, transform: true }))
export class TokenEndpointRoutes {
  private readonly apiKeys: IntrospectionApiKeys;

  constructor(
    @Inject(OTP_TOKEN_ENDPOINT_CONFIG) private readonly config: TokenEndpointConfig,
    private readonly accessTokens: AccessTokenService,
  ) {
    this.apiKeys = new IntrospectionApiKeys(config.tokenEndpoints.introspectionApiKeys);
  }

  @Post('introspect')
  @Public() // the bearer token is an API key, checked here
  @AcceptsBodyTypes('application/json', 'application/x-www-form-urlencoded') // RFC 7662 §2.1
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiBearerAuth()
  @ApiConsumes('application/json', 'application/x-www-form-urlencoded')
  @ApiOperation({ summary: 'RFC 7662 token introspection; the caller sends an API key as its bearer token' })
  @ApiOkResponse({ type: IntrospectionResponseDto })
  @ApiUnauthorizedResponse({ description: 'Missing or wrong API key.' })
  @ApiNotFoundResponse({ description: 'Introspection is not enabled (no API keys configured).' })
  introspect(
    @Req() request: AuthRequest,
    @Body() body: IntrospectionRequestDto,
    @Res({ passthrough: true }) response: AuthResponse,
  ): IntrospectionResponseDto {
    if (!this.apiKeys.enabled) {
      throw new NotFoundException('Token introspection is disabled; configure `tokenEndpoints.introspectionApiKeys`.');
    }
    if (!this.apiKeys.matches(bearerToken(request))) {
      response.header('WWW-Authenticate', 'Bearer realm="introspection"');
      throw new UnauthorizedException('A valid introspection API key is required as the bearer token.');
    }
    // Refresh tokens are opaque and only ever read by this service: they introspect as inactive.
    const claims = this.accessTokens.tryVerify(body.token);
    if (!claims) return { active: false };
    return { ...claims, active: true, token_type: 'access_token', amr: [...claims.amr] };
  }

  @Get('verify')
  @Public() // checks the token itself, answering a gateway with 401 + WWW-Authenticate
  @Header('Cache-Control', 'no-store')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'For nginx auth_request and gateways: 200 with X-Auth-User and X-Auth-Claims, or 401',
  })
  @ApiOkResponse({ description: 'Empty body; the headers carry the identity.' })
  @ApiUnauthorizedResponse({ description: 'Missing, invalid, expired or revoked access token.' })
  verify(@Req() request: AuthRequest, @Res({ passthrough: true }) response: AuthResponse): void {
    if (!this.config.tokenEndpoints.verify) throw new NotFoundException();
    const claims = this.accessTokens.tryVerify(bearerToken(request));
    if (!claims) {
      response.header('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedException(INVALID_TOKEN_MESSAGE);
    }
    // base64url keeps any claim value (newlines, non-ASCII) out of the header syntax.
    response.header(AUTH_USER_HEADER, encodeURIComponent(claims.sub));
    response.header(AUTH_CLAIMS_HEADER, Buffer.from(JSON.stringify(claims)).toString('base64url'));
  }
}

/** The token routes under a prefix; a fresh class per module so several prefixes can coexist. */
export function createTokenEndpointController(prefix: string): Type<TokenEndpointRoutes> {
  class TokenEndpointController extends TokenEndpointRoutes {}
  Controller(prefix)(TokenEndpointController);
  return TokenEndpointController;
}
