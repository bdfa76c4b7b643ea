import type { Provider, Type } from '@nestjs/common';
import type { OtpSendFunction, OtpSender } from '../delivery/otp-sender.interface.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';

/** Where `verify-otp` and `refresh` put the refresh token. */
export type RefreshTokenDelivery = 'cookie' | 'body' | 'both';

/** Attributes of the refresh-token cookie. */
export interface RefreshCookieOptions {
  /** Default `__Secure-otp_refresh` when `secure`, else `otp_refresh`. */
  name?: string;
  /** Default true; set false only for plain-HTTP local development. */
  secure?: boolean;
  /** Default `strict`: the cookie is never sent on cross-site requests. */
  sameSite?: 'strict' | 'lax' | 'none';
  /** Default `/<routePrefix>`: the cookie goes only to the auth routes. Include any global prefix. */
  path?: string;
  domain?: string;
}

/** Custom claims added to access tokens. Registered claims (`sub`, `exp`, ...) cannot be overridden. */
export type AdditionalClaims = Record<string, unknown>;

/** Authenticator-app (TOTP) two-factor settings; durations in seconds. */
export interface TotpOptions {
  /** Shown in authenticator apps and used in the key URI; may not contain `:`. Default `nestjs-otp-auth`. */
  issuer?: string;
  /** Time steps accepted either side of the current one (RFC 6238 §5.2). Default 1 (±30 s). */
  window?: number;
  /** HMAC of the codes. Default `SHA1`, the only one every authenticator app supports. */
  algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
  /** Digits per code, 6 or 8. Default 6. */
  digits?: 6 | 8;
  /** Seconds per step. Default 30. */
  period?: number;
  /** Second-factor guesses per user across sessions and challenges within `failureWindow`. Default 10. */
  maxFailures?: number;
  /** Default 900 (15 min). */
  failureWindow?: number;
  /** Lifetime of an `mfa_token`. Default 300. */
  mfaTokenTtl?: number;
  /** Guesses per `mfa_token`. Default 5. */
  mfaMaxAttempts?: number;
  /** Backup codes per set. Default 10. */
  backupCodeCount?: number;
  /**
   * Users for whom a second factor is mandatory: `VerifiedUserGuard` answers 403 to their sessions
   * without one. Method syntax: takes your own user type. Default: nobody.
   */
  required?(user: object): boolean;
}

/** Options of {@link OtpAuthModule}; durations are in seconds. */
export interface OtpAuthModuleOptions {
  /**
   * Key material for token signatures and code hashes: at least 32 characters.
   * Generate one with `openssl rand -hex 32`.
   */
  secret: string;
  /** Persistence, e.g. `new TypeOrmOtpAuthStore(dataSource, { userEntity: User })`. */
  store: OtpAuthStore;
  /** Delivers codes. Either this or the `sender` class is required (not in developer mode). */
  sendOtp?: OtpSendFunction;
  /**
   * Testing mode: every code is all zeros and is returned by `request-otp`; short secrets are
   * accepted. The module refuses to start with it when `NODE_ENV=production`.
   */
  developerMode?: boolean;
  /** Access-token lifetime. Default 3600 (1 h). */
  accessTokenTtl?: number;
  /** Refresh-token lifetime (each rotation starts a new one). Default 604800 (7 days). */
  refreshTokenTtl?: number;
  /** Digits per code, 4–10. Default 6. */
  otpLength?: number;
  /** Code lifetime. Default 600 (10 min). */
  otpTtl?: number;
  /** Guesses allowed per code; after that even the right code fails. Default 5. */
  maxAttempts?: number;
  /** Minimum time between two codes for the same address. Default 60. */
  resendCooldown?: number;
  /**
   * Guesses allowed per address across codes within `window` seconds, so requesting new codes
   * does not buy new guesses. Default `{ max: 10, window: 3600 }`.
   */
  addressFailureLimit?: { max: number; window: number };
  /** Create users on their first successful sign-in. Default true. */
  autoCreateUser?: boolean;
  /** Default `cookie`. With `both`, a cookie wins over a body token. */
  refreshTokenDelivery?: RefreshTokenDelivery;
  /** Refresh-token cookie attributes. */
  cookie?: RefreshCookieOptions;
  /**
   * How long a just-rotated refresh token may be presented again and receive the same
   * successor (two tabs refreshing at once). Later reuse revokes the session. 0 disables the
   * grace period. Default 5, max 30.
   */
  refreshReuseGracePeriod?: number;
  /** `iss` of access tokens. Default `nestjs-otp-auth`. */
  issuer?: string;
  /** `aud` of access tokens. Default `nestjs-otp-auth`. */
  audience?: string;
  /**
   * How often each instance pulls new revocations from the store (seconds). Revocations made
   * on this instance apply at once; this bounds the delay on other instances. Default 1.
   */
  revocationSyncInterval?: number;
  /** Custom claims for a user's access tokens. Method syntax: takes your own user type. */
  getAdditionalClaims?(user: object): AdditionalClaims | Promise<AdditionalClaims>;
  /** Authenticator-app two-factor settings. */
  totp?: TotpOptions;
  /**
   * Former values of `secret`, kept while TOTP secrets encrypted under them are still in use, so
   * the secret can be rotated without locking anyone out.
   */
  previousSecrets?: string[];
  /** Clock in epoch milliseconds; for tests. Default `Date.now`. */
  clock?: () => number;
}

/**
 * Options fixed when the module is defined (they shape routes and providers), given to
 * `forRoot` and `forRootAsync` directly rather than returned by the factory.
 */
export interface OtpAuthModuleExtras {
  /** Register the module in the global scope. Default false. */
  isGlobal?: boolean;
  /** Prefix of the auth routes. Default `auth`. */
  routePrefix?: string;
  /** Mount the HTTP controller. Set false to call the services from your own routes. Default true. */
  mountRoutes?: boolean;
  /** An injectable sender class, resolved through DI (used when `sendOtp` is not given). */
  sender?: Type<OtpSender>;
  /** More providers available to the options factory and the sender. */
  extraProviders?: Provider[];
}
