/**
 * nestjs-otp-auth: passwordless email-code login, JWT sessions with rotating refresh tokens
 * and revocation for NestJS. Persistence adapters live behind their own entry points
 * (`nestjs-otp-auth/typeorm`), so importing this one loads no ORM.
 *
 * @packageDocumentation
 */
export { OtpAuthModule } from './otp-auth.module.js';
export {
  OTP_MODULE_OPTIONS,
  OTP_AUTH_OPTIONS_TYPE,
  OTP_AUTH_ASYNC_OPTIONS_TYPE,
} from './otp-auth.module-definition.js';
export { OTP_AUTH_STORE } from './store/constants.js';
export { OtpAuthEvents } from './events/otp-auth-events.js';
export type { OtpAuthModuleOptions, OtpAuthModuleExtras } from './options/otp-auth-options.interface.js';
export {
  OTP_AUTH_DEFAULTS,
  MIN_SECRET_LENGTH,
  MIN_SECRET_DISTINCT_CHARACTERS,
  resolveOtpAuthOptions,
  type ResolvedOtpAuthOptions,
} from './options/resolve-options.js';
export {
  CODE_DEFAULTS,
  type CodeOptions,
  type ResolvedCodeOptions,
  type StatelessCodeOptions,
} from './codes/code.options.js';
export {
  TOKEN_DEFAULTS,
  type AdditionalClaims,
  type ResolvedTokenOptions,
  type TokenOptions,
} from './tokens/token.options.js';
export {
  REFRESH_TRANSPORT_DEFAULTS,
  type RefreshCookieOptions,
  type RefreshTokenDelivery,
  type RefreshTransportOptions,
  type ResolvedRefreshCookie,
  type ResolvedRefreshTransport,
} from './http/refresh-transport.options.js';
export { type ResolvedTotpOptions, type TotpOptions } from './totp/totp.options.js';
export { DELIVERY_DEFAULTS, type DeliveryOptions, type ResolvedDeliveryOptions } from './delivery/delivery.options.js';
export {
  type ResolvedTokenEndpointOptions,
  type TokenEndpointOptions,
} from './token-endpoints/token-endpoint.options.js';
export { type ResolvedRateLimits } from './rate-limits/rate-limit.options.js';
export { OtpAuthService } from './otp-auth.service.js';
export { normalizeEmail } from './codes/normalize-email.js';
export { LoginCodeService, INVALID_CODE_MESSAGE, type CodeRequestResult } from './codes/login-code.service.js';
export { generateNumericCode, developerCode } from './codes/code-generator.js';
export { deriveStatelessCode, windowCounter, MAX_STATELESS_CODE_DIGITS } from './codes/stateless-code.js';
export { StatelessLoginCodes, MAX_STATELESS_CODES_PER_WINDOW } from './codes/stateless-login-codes.js';
export { SessionService, INVALID_REFRESH_MESSAGE, type SessionTokens } from './tokens/session.service.js';
export { AccessTokenService, INVALID_TOKEN_MESSAGE, type IssuedAccessToken } from './tokens/access-token.service.js';
export { RevocationList } from './tokens/revocation-list.js';
export {
  REGISTERED_CLAIMS,
  customClaimsOf,
  type AccessTokenClaims,
  type TokenType,
} from './tokens/access-token-claims.js';
export { OtpAuthGuard } from './guards/otp-auth.guard.js';
export { OtpAuthGlobalGuard } from './guards/otp-auth-global.guard.js';
export { VerifiedUserGuard } from './guards/verified-user.guard.js';
export { Public, IS_PUBLIC_ROUTE } from './guards/public.decorator.js';
export { CurrentUser, Claims, TokenClaims } from './guards/decorators.js';
export type { OtpAuthRequestState, AuthRequest } from './http/auth-request.js';
export {
  OTP_SENDER,
  type OtpSender,
  type OtpSendFunction,
  type OtpDeliveryContext,
  type OtpPurpose,
} from './delivery/otp-sender.interface.js';
export { ConsoleOtpSender } from './delivery/console-otp.sender.js';
export { RecipientLimit } from './delivery/recipient-limit.js';
export { CodeOutbox } from './delivery/code-outbox.js';
export { InlineDelivery } from './delivery/inline-delivery.js';
export { OTP_CODE_DELIVERY, type CodeDelivery, type CodeMessage } from './delivery/code-delivery.js';
export {
  OtpMessageTemplates,
  OTP_TEMPLATE_PLACEHOLDERS,
  type OtpTemplatePlaceholder,
  type OtpMessageTemplate,
  type OtpMessageOverrides,
  type OtpMessageTemplatesOptions,
  type RenderedOtpEmail,
} from './delivery/message-templates.js';
export { SmsOtpSender, type SmsOtpSenderOptions, type SmsRecipientResolver } from './delivery/sms-otp.sender.js';
export {
  OtpRateLimiter,
  RateLimited,
  type RateLimitedAction,
  type RateLimitSubject,
  type RateLimitVerdict,
} from './rate-limits/otp-rate-limiter.js';
export { OtpRateLimitGuard } from './rate-limits/otp-rate-limit.guard.js';
export {
  RATE_LIMIT_DEFAULTS,
  type RateLimitOptions,
  type RateLimitRule,
  type RateLimitScopes,
  type SendRateLimitScopes,
} from './rate-limits/rate-limit-rules.js';
export type * from './rate-limits/rate-limit-storage.interface.js';
export { OTP_RATE_LIMIT_STORAGE } from './rate-limits/rate-limit-storage.interface.js';
export { CleanupScheduler } from './maintenance/cleanup-scheduler.js';
export {
  InMemoryRateLimitStorage,
  DEFAULT_MAX_RATE_LIMIT_KEYS,
  type InMemoryRateLimitStorageOptions,
} from './rate-limits/in-memory-rate-limit.storage.js';
export {
  FallbackRateLimitStorage,
  type RateLimitFailurePolicy,
  type FallbackRateLimitStorageOptions,
  type RateLimitStorageErrorInfo,
} from './rate-limits/fallback-rate-limit.storage.js';
export {
  resolveClientIp,
  rateLimitKeyForIp,
  normalizeIp,
  type TrustProxy,
  type ClientIpRequest,
} from './rate-limits/client-ip.js';
export { rateLimitHeaders, type RateLimitHeaders } from './rate-limits/rate-limit-headers.js';
export type { RevocationBroadcaster } from './tokens/revocation-broadcaster.interface.js';
export {
  type OtpAuthEvent,
  type OtpAuthEventType,
  type TimedOtpAuthEvent,
  type RefusalReason,
  type SessionRevocationReason,
} from './events/otp-auth-event.js';
export {
  WebhookOtpSender,
  signWebhookBody,
  verifyWebhookRequest,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  type WebhookOtpSenderOptions,
  type WebhookOtpDelivery,
  type WebhookRequestHeaders,
  type VerifyWebhookRequestOptions,
} from './delivery/webhook-otp.sender.js';
export { OtpAuthRoutes, createOtpAuthController } from './routes/otp-auth.controller.js';
export * from './http/dto.js';
export { SecretKeys } from './crypto/secret-keys.js';
export {
  TokenEndpointRoutes,
  createTokenEndpointController,
  AUTH_USER_HEADER,
  AUTH_CLAIMS_HEADER,
} from './token-endpoints/token-endpoints.controller.js';
export { IntrospectionApiKeys, MIN_API_KEY_LENGTH } from './token-endpoints/introspection-api-keys.js';
export * from './token-endpoints/introspection.dto.js';
export { hasSecondFactor, SECOND_FACTOR_AMR } from './tokens/amr.js';
export {
  TotpService,
  INVALID_SECOND_FACTOR_MESSAGE,
  type SecondFactorProof,
  type TotpEnrollment,
} from './totp/totp.service.js';
export { MfaChallengeService, INVALID_MFA_TOKEN_MESSAGE, type MfaChallenge } from './totp/mfa-challenge.service.js';
export { SignInService } from './sign-in/sign-in.service.js';
export { isMfaChallenge, type SignInResult } from './sign-in/sign-in-result.js';
export { TotpCipher, BackupCodeHasher, newBackupCode, normalizeBackupCode } from './totp/totp-cipher.js';
export { TotpRoutes, createTotpController } from './totp/totp.controller.js';
export * from './totp/totp.dto.js';
export type * from './store/totp-store.interface.js';
export { MfaGuard, RequireMfa, MFA_REQUIRED_MESSAGE } from './guards/require-mfa.js';
export {
  RecentSignInGuard,
  RequireRecentSignIn,
  RECENT_SIGN_IN_MAX_AGE,
  DEFAULT_RECENT_SIGN_IN_MAX_AGE,
  TOTP_ENROLLMENT_WINDOW,
  TOTP_MANAGEMENT_WINDOW,
  INSUFFICIENT_USER_AUTHENTICATION,
  type RecentSignInWindow,
} from './guards/recent-sign-in.guard.js';
export type * from './store/otp-auth-store.interface.js';
export type * from './store/user-store.interface.js';
export type * from './store/code-store.interface.js';
export type * from './store/session-store.interface.js';
export { isNetworkError, withStoreAvailability } from './store/store-unavailable.js';
export { RetryAfterFilter } from './http/retry-after.filter.js';
export { OtpValidationPipe, MAX_BODY_DEPTH, nestedDeeperThan } from './http/body-validation.pipe.js';
export {
  RefreshCookieOriginGuard,
  JsonBodyGuard,
  SetsRefreshCookie,
  AcceptsBodyTypes,
  SETS_REFRESH_COOKIE,
  ACCEPTED_BODY_TYPES,
  CROSS_SITE_MESSAGE,
  mediaTypeOf,
} from './http/request-guards.js';
export {
  NoRecipientError,
  type NoRecipientReason,
  type OtpAuthErrorCode,
  OtpAuthConfigurationError,
  OtpServiceUnavailableException,
  OtpStoreUnavailableException,
  PermanentDeliveryError,
  RateLimitStorageTimeoutError,
  RateLimitUnavailableError,
  RateLimitUnavailableException,
  ResendCooldownException,
  RetryLaterException,
  STORE_UNAVAILABLE_RETRY_AFTER,
  TooManyRequestsException,
} from './errors.js';
