import type { FactoryProvider } from '@nestjs/common';
import { OTP_CODE_CONFIG, type CodeConfig } from './codes/code.options.js';
import { SecretKeys } from './crypto/secret-keys.js';
import { OTP_DELIVERY_CONFIG, type DeliveryConfig } from './delivery/delivery.options.js';
import { OTP_EVENTS_CONFIG, type EventsConfig } from './events/otp-auth-events.js';
import { OTP_GUARD_CONFIG, type GuardConfig } from './guards/guard.config.js';
import { OTP_HTTP_CONFIG, type HttpConfig } from './http/refresh-transport.options.js';
import { OTP_TOKEN_ENDPOINT_CONFIG, type TokenEndpointConfig } from './token-endpoints/token-endpoint.options.js';
import { OTP_CLEANUP_CONFIG, type CleanupConfig } from './maintenance/cleanup.options.js';
import { OTP_AUTH_CONFIG } from './otp-auth.constants.js';
import type { ResolvedOtpAuthOptions } from './options/resolve-options.js';
import { OTP_RATE_LIMIT_CONFIG, type RateLimitConfig } from './rate-limits/rate-limit.options.js';
import { OTP_AUTH_STORE } from './store/constants.js';
import type { OtpAuthStore } from './store/otp-auth-store.interface.js';
import { OTP_TOKEN_CONFIG, type TokenConfig } from './tokens/token.options.js';
import { OTP_TOTP_CONFIG, type TotpConfig } from './totp/totp.options.js';

/**
 * One slice of the resolved options under its own token. Each slice is a new object holding only
 * what its feature reads, so a service sees its settings and nothing else: only the key holders
 * ({@link SecretKeys}, and `TotpConfig` for TOTP encryption and backup-code hashing) get the secret.
 */
function slice<T>(token: FactoryProvider['provide'], pick: (options: ResolvedOtpAuthOptions) => T): FactoryProvider<T> {
  return { provide: token, inject: [OTP_AUTH_CONFIG], useFactory: pick };
}

/**
 * The module's providers derived from its resolved options ({@link OTP_AUTH_CONFIG}, which stays
 * inside the module): the store (initialised and wrapped for availability there), the key holder,
 * and one configuration slice per feature.
 */
export function otpAuthConfigProviders(): FactoryProvider[] {
  // SecretKeys and OTP_TOTP_CONFIG hold the secret: never exported to the app (see OTP_AUTH_EXPORTED_CONFIG).
  return [
    slice<OtpAuthStore>(OTP_AUTH_STORE, (o) => o.store),
    slice(SecretKeys, (o) => new SecretKeys(o.secret)),
    slice<EventsConfig>(OTP_EVENTS_CONFIG, (o) => ({ onEvent: o.onEvent, clock: o.clock })),
    slice<RateLimitConfig>(OTP_RATE_LIMIT_CONFIG, (o) => ({ rateLimits: o.rateLimits, clock: o.clock })),
    slice<DeliveryConfig>(OTP_DELIVERY_CONFIG, (o) => ({
      delivery: o.delivery,
      autoCreateUser: o.autoCreateUser,
      clock: o.clock,
    })),
    slice<CodeConfig>(OTP_CODE_CONFIG, (o) => ({
      developerMode: o.developerMode,
      otpLength: o.otpLength,
      codeMode: o.codeMode,
      stateless: o.stateless,
      otpTtl: o.otpTtl,
      maxAttempts: o.maxAttempts,
      resendCooldown: o.resendCooldown,
      addressFailureLimit: o.addressFailureLimit,
      consecutiveFailures: o.consecutiveFailures,
      autoCreateUser: o.autoCreateUser,
      store: o.store,
      clock: o.clock,
      delivery: { mode: o.delivery.mode },
      rateLimits: { storage: o.rateLimits.storage, onStorageError: o.rateLimits.onStorageError },
    })),
    slice<TokenConfig>(OTP_TOKEN_CONFIG, (o) => ({
      accessTokenTtl: o.accessTokenTtl,
      refreshTokenTtl: o.refreshTokenTtl,
      sessionMaxAge: o.sessionMaxAge,
      sessionIdleTimeout: o.sessionIdleTimeout,
      refreshReuseGracePeriod: o.refreshReuseGracePeriod,
      issuer: o.issuer,
      audience: o.audience,
      revocationSyncInterval: o.revocationSyncInterval,
      revocationBroadcaster: o.revocationBroadcaster,
      getAdditionalClaims: o.getAdditionalClaims,
      store: o.store,
      clock: o.clock,
    })),
    slice<HttpConfig>(OTP_HTTP_CONFIG, (o) => ({
      refreshTokenDelivery: o.refreshTokenDelivery,
      cookie: o.cookie,
      routePrefix: o.routePrefix,
      rateLimits: { trustProxy: o.rateLimits.trustProxy },
    })),
    slice<GuardConfig>(OTP_GUARD_CONFIG, (o) => ({
      store: o.store,
      clock: o.clock,
      totp: {
        required: o.totp.required,
        enrollmentMaxAuthAge: o.totp.enrollmentMaxAuthAge,
        managementMaxAuthAge: o.totp.managementMaxAuthAge,
      },
    })),
    slice<TotpConfig>(OTP_TOTP_CONFIG, (o) => ({
      totp: o.totp,
      secret: o.secret,
      previousSecrets: o.previousSecrets,
      store: o.store,
      clock: o.clock,
      issuer: o.issuer,
      audience: o.audience,
    })),
    slice<TokenEndpointConfig>(OTP_TOKEN_ENDPOINT_CONFIG, (o) => ({ tokenEndpoints: o.tokenEndpoints })),
    slice<CleanupConfig>(OTP_CLEANUP_CONFIG, (o) => ({ cleanupInterval: o.cleanupInterval })),
  ];
}

/**
 * The configuration tokens the module exports: those its guards and pipes need when the app lists
 * them in `@UseGuards` (Nest builds such enhancers in the app's module). None holds the secret.
 */
export const OTP_AUTH_EXPORTED_CONFIG = [
  OTP_AUTH_STORE,
  OTP_EVENTS_CONFIG,
  OTP_RATE_LIMIT_CONFIG,
  OTP_DELIVERY_CONFIG,
  OTP_CODE_CONFIG,
  OTP_TOKEN_CONFIG,
  OTP_HTTP_CONFIG,
  OTP_GUARD_CONFIG,
  OTP_TOKEN_ENDPOINT_CONFIG,
  OTP_CLEANUP_CONFIG,
] as const;
