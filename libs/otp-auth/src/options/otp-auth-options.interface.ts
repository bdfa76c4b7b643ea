import type { Provider, Type } from '@nestjs/common';
import type { OtpSendFunction, OtpSender } from '../delivery/otp-sender.interface.js';
import type { TimedOtpAuthEvent } from '../events/otp-auth-event.js';
import type { RateLimitOptions, RateLimitRule } from '../rate-limits/rate-limit-rules.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { RevocationBroadcaster } from '../tokens/revocation-broadcaster.interface.js';

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
  /**
   * Default: where the auth routes are mounted, `/<global prefix>/<routePrefix>` (`/api/auth` after
   * `app.setGlobalPrefix('api')`, `/auth` without one; a URI default version and global-prefix
   * `exclude` are followed too), so the cookie goes only to the auth routes. A path given here is
   * used as is; startup warns when it does not cover the `refresh` and `logout` routes.
   */
  path?: string;
  domain?: string;
  /**
   * Origins (`https://app.example.com`) other than the API's own host whose pages may refresh or log
   * out with the cookie; cookie requests from any other `Origin` get 403. Default none.
   */
  allowedOrigins?: string[];
}

/** Custom claims added to access tokens. Registered claims (`sub`, `exp`, ...) cannot be overridden. */
export type AdditionalClaims = Record<string, unknown>;

/** Stateless code settings (`codeMode: 'stateless'`); durations in seconds. */
export interface StatelessCodeOptions {
  /** Length of a time window; a code is issued for the current one. Default 300. */
  window?: number;
  /** Earlier windows whose codes are still accepted (clock skew, slow mail). Default 1. */
  drift?: number;
  /**
   * Whether several instances serve sign-ins. Then startup refuses markers in memory (each
   * instance would accept a code once): use `RedisRateLimitStorage`. Default: true when
   * `revocationBroadcaster` is set (a sign of several instances), else false, which only logs a
   * warning when the markers are in memory.
   */
  multiInstance?: boolean;
}

/** How codes reach the sender. */
export interface DeliveryOptions {
  /**
   * `inline` (default): `request-otp` waits for the sender and answers 503 if it fails.
   * `outbox`: `request-otp` answers at once and an in-process queue sends with retries; failures
   * are reported through `onEvent` (`code.delivery_failed`) and the code is withdrawn.
   */
  mode?: 'inline' | 'outbox';
  /** Outbox: retries of a transient failure. Default 3. */
  retries?: number;
  /** Outbox: first retry delay in ms, doubled each time (with jitter). Default 1000. */
  retryDelayMs?: number;
  /** Outbox: messages sent at once. Default 4. */
  concurrency?: number;
  /** Outbox: messages queued before `request-otp` answers 503. Default 10000. */
  maxQueue?: number;
  /** Outbox: how long shutdown waits for queued messages. Default 5000 ms. */
  shutdownGraceMs?: number;
  /**
   * Inline, with {@link DeliveryOptions.uniformTiming} on: the fixed time in milliseconds after
   * which `request-otp` answers, for every address (1 to 60000). Addresses that get a message
   * wait for delivery up to this deadline, then get the answer anyway while delivery goes on in
   * the background (a failure after it is reported by `code.delivery_failed` and the log, and the
   * code is withdrawn); addresses that get none wait exactly this long. Choose it above your
   * provider's usual latency, or most requests finish delivery in the background.
   * @default 1000
   */
  responseDeadline?: number;
  /**
   * Inline: answer every `request-otp` at `responseDeadline`, whatever happened to the message,
   * so that response time, status and body never tell whether the address got one. A delivery
   * failure then answers like a success (reported by `code.delivery_failed`), not with 503.
   * Default: on when a response could otherwise differ by address, i.e. with
   * `autoCreateUser: false` or a sender that resolves recipients (`SmsOtpSender`, see
   * `OtpSender.resolvesRecipients`); off otherwise, where every address gets a message. Set
   * `true` for a `sendOtp` function that may find nowhere to send (throws `NoRecipientError`).
   * `false` turns it off even then: unknown addresses are then answered at once, which tells them apart.
   * @default undefined (automatic)
   */
  uniformTiming?: boolean;
  /**
   * Messages per destination (what a sender resolved, e.g. a phone number), whichever addresses
   * asked: one rule `{ limit, window }` (seconds) or several, or `false`. Counted in the
   * rate-limit storage under a keyed hash of the destination (also when `rateLimits.enabled` is
   * false: a gateway cannot see destinations). A refused message is not sent and the requester
   * gets the usual answer; `rate_limit.exceeded` (scope `deliver-recipient`) and `code.not_sent`
   * report it. Senders apply it through `OtpDeliveryContext.admitRecipient` (`SmsOtpSender` does).
   * @default [{ limit: 5, window: 600 }, { limit: 20, window: 86400 }] (what one address may get)
   */
  recipientLimit?: RateLimitRule | RateLimitRule[] | false;
}

/** Endpoints for other services: token introspection and the gateway check. */
export interface TokenEndpointOptions {
  /**
   * API keys (at least 32 characters each) that may call `POST /introspect`, sent as
   * `Authorization: Bearer <key>`. Introspection answers 404 while this is empty. Default none.
   */
  introspectionApiKeys?: string[];
  /** Serve `GET /verify` for nginx `auth_request` and other gateways. Default true. */
  verify?: boolean;
}

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
   * Enrolling an authenticator (`setup`, `qr`, `confirm`) needs a sign-in at most this many
   * seconds old (the access token's `auth_time`; refreshing does not renew it). Otherwise the
   * answer is 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`
   * (RFC 9470), so a stolen access or refresh token cannot add an attacker's authenticator to an
   * account (one stolen within the window still can; the window bounds that). `false` turns the
   * check off. Default 900 (15 min). `RequireRecentSignIn` applies the same check, with its own window, to your routes.
   */
  enrollmentMaxAuthAge?: number | false;
  /**
   * Turning two-factor off (`disable`) and replacing the backup codes (`backup-codes`) need a
   * sign-in at most this many seconds old, with the same 401 step-up answer as enrolment, on top
   * of a current authenticator or backup code: a stolen session (access or refresh token) alone
   * cannot remove or take over the second factor (ASVS 5.0 7.5.1). `false` turns the check off.
   * @default the value of `enrollmentMaxAuthAge` (900, 15 min; off when that is `false`)
   */
  managementMaxAuthAge?: number | false;
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
  /** Refresh-token lifetime (each rotation starts a new one, up to `sessionMaxAge`). Default 604800 (7 days). */
  refreshTokenTtl?: number;
  /**
   * Absolute session lifetime in seconds (60 to 1 year), counted from sign-in (`auth_time`),
   * however often the session is refreshed. Refresh tokens and the refresh cookie never outlive
   * it; a refresh after it answers 401 and revokes the session (`session.revoked`, reason
   * `max_age`). When given, it must be at least `refreshTokenTtl`; the default caps a longer
   * `refreshTokenTtl`.
   * @default 2592000
   */
  sessionMaxAge?: number;
  /**
   * Idle timeout in seconds (60 to 1 year): a refresh more than this after the session's last
   * sign-in or refresh answers 401 and revokes the session (`session.revoked`, reason
   * `idle_timeout`). Only useful below `refreshTokenTtl`, which already ends idle sessions
   * (without an event). `false` turns it off.
   * @default false
   */
  sessionIdleTimeout?: number | false;
  /** Digits per code, 4–10 (4–9 in stateless mode). Default 6. */
  otpLength?: number;
  /**
   * `stored` (default): each code is random and stored as a keyed hash. `stateless`: codes are
   * derived from the secret, the address and the time window (no code storage); used codes and
   * attempt counts live in the rate-limit storage, which must be Redis for several instances.
   * `otpTtl` does not apply in stateless mode: a code lives until its window plus `drift` ends.
   */
  codeMode?: 'stored' | 'stateless';
  /** Settings of `codeMode: 'stateless'`. */
  stateless?: StatelessCodeOptions;
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
  /**
   * Wrong codes in a row for one address, across codes and windows, until a code is accepted
   * (NIST SP 800-63B 5.2.2 allows at most 100). After `backoffAfter` of them each further guess
   * must wait twice as long as the one before (1 s, 2 s, 4 s ... up to an hour); at `max` no code
   * is accepted for the address until `window` seconds after the streak began, and
   * `code.failure_limit_reached` is emitted so the app can tell the owner
   * (`OtpAuthService.resetFailureStreak` lifts it). Kept in the rate-limit storage, so several
   * instances need a shared one. Default `{ max: 100, backoffAfter: 10, window: 2_592_000 }` (30 days).
   */
  consecutiveFailures?: { max?: number; backoffAfter?: number; window?: number };
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
  /**
   * Pushes revocations to all instances at once (e.g. `RedisRevocationBroadcaster` from
   * `nestjs-otp-auth/redis`); the store pull stays on as the safety net. Default none.
   */
  revocationBroadcaster?: RevocationBroadcaster;
  /** Custom claims for a user's access tokens. Method syntax: takes your own user type. */
  getAdditionalClaims?(user: object): AdditionalClaims | Promise<AdditionalClaims>;
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
