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
export { OTP_AUTH_CONFIG, OTP_JWT_STRATEGY } from './otp-auth.constants.js';
export type {
  OtpAuthModuleOptions,
  OtpAuthModuleExtras,
  RefreshCookieOptions,
  RefreshTokenDelivery,
  AdditionalClaims,
  TotpOptions,
} from './options/otp-auth-options.interface.js';
export {
  OtpAuthConfigurationError,
  OTP_AUTH_DEFAULTS,
  MIN_SECRET_LENGTH,
  resolveOtpAuthOptions,
  type ResolvedOtpAuthOptions,
} from './options/resolve-options.js';
export { OtpAuthService, normalizeEmail } from './otp-auth.service.js';
export {
  LoginCodeService,
  ResendCooldownException,
  INVALID_CODE_MESSAGE,
  type CodeRequestResult,
} from './codes/login-code.service.js';
export { generateNumericCode, developerCode } from './codes/code-generator.js';
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
export { VerifiedUserGuard } from './guards/verified-user.guard.js';
export { CurrentUser, Claims, TokenClaims } from './guards/decorators.js';
export type { OtpAuthRequestState, AuthRequest } from './guards/auth-request.js';
export { OtpJwtStrategy } from './passport/otp-jwt.strategy.js';
export {
  OTP_SENDER,
  type OtpSender,
  type OtpSendFunction,
  type OtpDeliveryContext,
  type OtpPurpose,
} from './delivery/otp-sender.interface.js';
export { ConsoleOtpSender } from './delivery/console-otp.sender.js';
export {
  WebhookOtpSender,
  signWebhookBody,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  type WebhookOtpSenderOptions,
} from './delivery/webhook-otp.sender.js';
export { OtpAuthRoutes, createOtpAuthController } from './http/otp-auth.controller.js';
export * from './http/dto.js';
export { SecretKeys } from './crypto/secret-keys.js';
export {
  TotpService,
  hasSecondFactor,
  SECOND_FACTOR_AMR,
  INVALID_SECOND_FACTOR_MESSAGE,
  type SecondFactorProof,
  type TotpEnrollment,
} from './totp/totp.service.js';
export {
  MfaChallengeService,
  isMfaChallenge,
  INVALID_MFA_TOKEN_MESSAGE,
  type MfaChallenge,
  type SignInResult,
} from './totp/mfa-challenge.service.js';
export { TotpCipher, BackupCodeHasher, newBackupCode, normalizeBackupCode } from './totp/totp-cipher.js';
export { TotpRoutes, createTotpController } from './totp/totp.controller.js';
export * from './totp/totp.dto.js';
export type * from './totp/totp-store.interface.js';
export { MfaGuard, RequireMfa, MFA_REQUIRED_MESSAGE } from './guards/require-mfa.js';
export type * from './store/otp-auth-store.interface.js';
