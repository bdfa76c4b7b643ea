import type { SessionTokens } from '../tokens/session.service.js';
import type { TokenResponseDto } from './dto.js';
import type { ResolvedRefreshTransport } from './refresh-transport.options.js';
import { setRefreshCookie, type AuthResponse } from './refresh-cookie.js';

/** The JSON and cookie of a response that opens or refreshes a session, per the delivery mode. */
export function writeTokenResponse(
  config: ResolvedRefreshTransport,
  tokens: SessionTokens,
  response: AuthResponse,
): TokenResponseDto {
  const { refreshTokenDelivery, cookie } = config;
  // The token's own remaining lifetime: capped by sessionMaxAge near the end of a session.
  if (refreshTokenDelivery !== 'body') setRefreshCookie(response, cookie, tokens.refreshToken, tokens.refreshExpiresIn);
  const body: TokenResponseDto = {
    access_token: tokens.accessToken,
    token_type: 'bearer',
    expires_in: tokens.expiresIn,
  };
  if (refreshTokenDelivery !== 'cookie') body.refresh_token = tokens.refreshToken;
  return body;
}
