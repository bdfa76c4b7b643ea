/**
 * nestjs-otp-auth-client: the typed, fetch-based client of a nestjs-otp-auth service.
 *
 * - {@link OtpAuthClient}: sign-in (email code, TOTP), sessions kept fresh (single-flight
 *   refresh, proactive refresh, cross-tab coordination), an authenticated `fetch`.
 * - {@link OtpAuthServerClient}: token introspection for other services.
 *
 * @packageDocumentation
 */
export { OtpAuthClient, type OtpAuthClientOptions, type RefreshTokenDelivery } from './client.js';
export {
  OtpAuthServerClient,
  type ActiveIntrospection,
  type IntrospectOptions,
  type IntrospectionResult,
  type OtpAuthServerClientOptions,
  type VerifiedToken,
} from './server-client.js';
export {
  errorFromResponse,
  isOtpAuthError,
  OtpAuthError,
  parseRetryAfter,
  type OtpAuthErrorCode,
  type OtpAuthErrorInit,
} from './errors.js';
export { MemoryTokenStorage, type StoredTokens, type TokenStorage } from './storage.js';
export type { BroadcastChannelLike, CrossTabOptions, LockManagerLike } from './cross-tab.js';
export {
  DEFAULT_ROUTE_PREFIX,
  OTP_AUTH_ROUTES,
  routeUrl,
  type OtpAuthRouteMethod,
  type OtpAuthRouteName,
  type OtpAuthRouteSpec,
} from './routes.js';
export { decodeJwtPayload } from './jwt.js';
export {
  systemClock,
  type AccessTokenClaims,
  type BackupCodesResult,
  type CallOptions,
  type Clock,
  type FetchLike,
  type LogoutAllResult,
  type ManageSecondFactorInput,
  type OtpAuthTotpApi,
  type RequestOtpInput,
  type RequestOtpResult,
  type SecondFactor,
  type Session,
  type SessionChangeEvent,
  type SessionChangeListener,
  type SessionStatus,
  type SignInResult,
  type SignOutReason,
  type TotpCodeInput,
  type TotpConfirmResult,
  type TotpDisableResult,
  type TotpSetupResult,
  type VerifyMfaInput,
  type VerifyOtpInput,
} from './types.js';
