import type { Provider, Type } from '@nestjs/common';
import type { CodeOptions } from '../codes/code.options.js';
import type { DeliveryOptions } from '../delivery/delivery.options.js';
import type { OtpSendFunction, OtpSender } from '../delivery/otp-sender.interface.js';
import type { TimedOtpAuthEvent } from '../events/otp-auth-event.js';
import type { RefreshTransportOptions } from '../http/refresh-transport.options.js';
import type { TokenEndpointOptions } from '../token-endpoints/token-endpoint.options.js';
import type { RateLimitOptions } from '../rate-limits/rate-limit-rules.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { TokenOptions } from '../tokens/token.options.js';
import type { TotpOptions } from '../totp/totp.options.js';

/**
 * Options of {@link OtpAuthModule}; durations are in seconds. Each feature owns its part (email
 * codes: `CodeOptions`, tokens and sessions: `TokenOptions`, the refresh cookie:
 * `RefreshTransportOptions`, and the nested `totp`, `delivery`, `rateLimits`, `tokenEndpoints`);
 * this interface only composes them.
 */
export interface OtpAuthModuleOptions extends CodeOptions, TokenOptions, RefreshTransportOptions {
  /**
   * Key material for token signatures and code hashes: at least 32 characters.
   * Generate one with `openssl rand -hex 32`.
   */
  secret: string;
  /** Persistence, e.g. `new TypeOrmOtpAuthStore(dataSource, { userEntity: User })`. */
  store: OtpAuthStore;
  /** Delivers codes. Either this or the `sender` class is required (not in developer mode). */
  sendOtp?: OtpSendFunction;
  /** Authenticator-app two-factor settings. */
  totp?: TotpOptions;
  /** Inline delivery (default) or a background outbox with retries. */
  delivery?: DeliveryOptions;
  /** Request limits per email, per IP and global, for sending and verifying codes. */
  rateLimits?: RateLimitOptions;
  /** `POST /introspect` (RFC 7662) and `GET /verify` (nginx `auth_request`). */
  tokenEndpoints?: TokenEndpointOptions;
  /**
   * Receives security events (code sent, verified, failed, locked out, refresh reuse, session
   * revoked, TOTP enabled/disabled/replayed, rate limits). Events carry no secrets. Forward
   * them to `@nestjs/event-emitter`, a logger or an alerting system; errors are logged and ignored.
   */
  onEvent?(event: TimedOtpAuthEvent): void | Promise<void>;
  /**
   * Former values of `secret`, kept while TOTP secrets encrypted under them are still in use, so
   * the secret can be rotated without locking anyone out.
   */
  previousSecrets?: string[];
  /** Clock in epoch milliseconds; for tests. Default `Date.now`. */
  clock?: () => number;
  /**
   * Seconds between automatic runs of `OtpAuthService.cleanup()`, which deletes expired codes,
   * refresh tokens, orphaned sessions, revocations and MFA rows (60 to 604800). Each run is reported
   * through `onEvent` (`cleanup.completed` or `cleanup.failed`). Runs are spread out so that
   * instances started together do not clean at once: the first comes at a random time within the
   * first interval (not in the first 5 minutes, or half the interval when that is shorter), later
   * ones every interval ± 10 %. Safe on several instances (only expired rows are deleted). `false`
   * turns it off, e.g. when a scheduled job calls `cleanup()`.
   * @default 3600
   */
  cleanupInterval?: number | false;
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
  /**
   * Register `OtpAuthGlobalGuard` as a global guard (`{ provide: APP_GUARD, useExisting:
   * OtpAuthGlobalGuard }`): every route of the app then needs a valid access token, except those
   * marked `@Public()` (the module's sign-in routes are). `@Public()` is read only by this global
   * guard: guards listed with `@UseGuards` always enforce, even on `@Public()` routes.
   * @default false
   */
  globalGuard?: boolean;
  /**
   * Register {@link RetryAfterFilter} globally, so every exception of the module that carries a
   * wait (429: rate limits and the resend cooldown; 503: an unreachable database or counter
   * storage) answers with `Retry-After`, on the module's routes and on the app's own. Set false when
   * your own global filter must see those exceptions (they are `HttpException`s with
   * `retryAfterSeconds`); `new RetryAfterFilter(app.get(HttpAdapterHost))` or your filter must then
   * add the header.
   * @default true
   */
  retryAfterFilter?: boolean;
  /** @deprecated The former name of {@link OtpAuthModuleExtras.retryAfterFilter}; still honoured. */
  storeUnavailableFilter?: boolean;
  /** An injectable sender class, resolved through DI (used when `sendOtp` is not given). */
  sender?: Type<OtpSender>;
  /** More providers available to the options factory and the sender. */
  extraProviders?: Provider[];
}
