import { OtpAuthConfigurationError } from '../errors.js';
import { integer, nonEmpty, YEAR } from '../option-checks.js';
import type { SessionStore } from '../store/session-store.interface.js';
import type { TotpStore } from '../store/totp-store.interface.js';
import type { UserStore } from '../store/user-store.interface.js';
import type { RevocationBroadcaster } from './revocation-broadcaster.interface.js';

/** Custom claims added to access tokens. Registered claims (`sub`, `exp`, ...) cannot be overridden. */
export type AdditionalClaims = Record<string, unknown>;

/** The token and session options of `OtpAuthModuleOptions`; durations in seconds. */
export interface TokenOptions {
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
}

/** Defaults of {@link TokenOptions}. */
export const TOKEN_DEFAULTS = {
  accessTokenTtl: 3600,
  refreshTokenTtl: 7 * 24 * 3600,
  sessionMaxAge: 30 * 24 * 3600,
  sessionIdleTimeout: false,
  refreshReuseGracePeriod: 5,
  issuer: 'nestjs-otp-auth',
  audience: 'nestjs-otp-auth',
  revocationSyncInterval: 1,
} as const;

/** The keys of {@link TokenOptions} (checked at startup). */
export const TOKEN_OPTION_KEYS = {
  accessTokenTtl: true,
  refreshTokenTtl: true,
  sessionMaxAge: true,
  sessionIdleTimeout: true,
  refreshReuseGracePeriod: true,
  issuer: true,
  audience: true,
  revocationSyncInterval: true,
  revocationBroadcaster: true,
  getAdditionalClaims: true,
} as const satisfies Record<keyof TokenOptions, true>;

/** {@link TokenOptions} after defaults and validation. */
export interface ResolvedTokenOptions {
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  /** Absolute session lifetime in seconds. */
  readonly sessionMaxAge: number;
  /** Idle timeout in seconds, or null when off. */
  readonly sessionIdleTimeout: number | null;
  readonly refreshReuseGracePeriod: number;
  readonly issuer: string;
  readonly audience: string;
  readonly revocationSyncInterval: number;
  readonly revocationBroadcaster: RevocationBroadcaster | undefined;
  readonly getAdditionalClaims: (user: object) => AdditionalClaims | Promise<AdditionalClaims>;
}

/** An explicit max age below `refreshTokenTtl` is a mistake; the default just caps the tokens. */
function resolveSessionMaxAge(value: number | undefined, refreshTokenTtl: number): number {
  const maxAge = integer('sessionMaxAge', value, TOKEN_DEFAULTS.sessionMaxAge, 60, YEAR);
  if (value !== undefined && maxAge < refreshTokenTtl) {
    throw new OtpAuthConfigurationError(
      `\`sessionMaxAge\` (${maxAge}) is shorter than \`refreshTokenTtl\` (${refreshTokenTtl}); raise it or lower \`refreshTokenTtl\`.`,
    );
  }
  return maxAge;
}

function resolveBroadcaster(broadcaster: RevocationBroadcaster | undefined): RevocationBroadcaster | undefined {
  if (
    broadcaster !== undefined &&
    (typeof broadcaster?.publish !== 'function' || typeof broadcaster.subscribe !== 'function')
  ) {
    throw new OtpAuthConfigurationError(
      '`revocationBroadcaster` must have `publish(entry)` and `subscribe(handler)`, e.g. `new RedisRevocationBroadcaster({ client })`.',
    );
  }
  return broadcaster;
}

/** Validates the token and session options and fills in {@link TOKEN_DEFAULTS}. */
export function resolveTokenOptions(options: TokenOptions): ResolvedTokenOptions {
  const d = TOKEN_DEFAULTS;
  if (options.getAdditionalClaims !== undefined && typeof options.getAdditionalClaims !== 'function') {
    throw new OtpAuthConfigurationError('`getAdditionalClaims` must be a function `(user) => claims`.');
  }
  const refreshTokenTtl = integer('refreshTokenTtl', options.refreshTokenTtl, d.refreshTokenTtl, 60, YEAR);
  return {
    accessTokenTtl: integer('accessTokenTtl', options.accessTokenTtl, d.accessTokenTtl, 10, 7 * 24 * 3600),
    refreshTokenTtl,
    sessionMaxAge: resolveSessionMaxAge(options.sessionMaxAge, refreshTokenTtl),
    sessionIdleTimeout:
      options.sessionIdleTimeout === false || options.sessionIdleTimeout === undefined
        ? null
        : integer('sessionIdleTimeout', options.sessionIdleTimeout, 0, 60, YEAR),
    refreshReuseGracePeriod: integer(
      'refreshReuseGracePeriod',
      options.refreshReuseGracePeriod,
      d.refreshReuseGracePeriod,
      0,
      30,
    ),
    issuer: nonEmpty('issuer', options.issuer, d.issuer),
    audience: nonEmpty('audience', options.audience, d.audience),
    revocationSyncInterval: integer(
      'revocationSyncInterval',
      options.revocationSyncInterval,
      d.revocationSyncInterval,
      1,
      3600,
    ),
    revocationBroadcaster: resolveBroadcaster(options.revocationBroadcaster),
    getAdditionalClaims: options.getAdditionalClaims?.bind(options) ?? (() => ({})),
  };
}

/** What the token and session services read of the module's options. */
export interface TokenConfig extends ResolvedTokenOptions {
  /** Sessions, and the user with their TOTP state (a one-factor session is refused once TOTP is on). */
  readonly store: UserStore & SessionStore & Pick<TotpStore, 'findTotp'>;
  /** Epoch milliseconds. */
  readonly clock: () => number;
}

/** DI token of {@link TokenConfig}. */
export const OTP_TOKEN_CONFIG = Symbol('OTP_TOKEN_CONFIG');
