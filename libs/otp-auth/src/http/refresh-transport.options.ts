import { OtpAuthConfigurationError } from '../errors.js';
import { nonEmpty } from '../option-checks.js';
import type { ResolvedRateLimits } from '../rate-limits/rate-limit.options.js';

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

/** The refresh-token transport options of `OtpAuthModuleOptions`. */
export interface RefreshTransportOptions {
  /** Default `cookie`. With `both`, a cookie wins over a body token. */
  refreshTokenDelivery?: RefreshTokenDelivery;
  /** Refresh-token cookie attributes. */
  cookie?: RefreshCookieOptions;
}

/** Defaults of {@link RefreshTransportOptions}. */
export const REFRESH_TRANSPORT_DEFAULTS = {
  refreshTokenDelivery: 'cookie',
  /** Prefixed with `__Secure-` when the cookie is `secure`. */
  cookieName: 'otp_refresh',
} as const;

const COOKIE_KEYS = {
  name: true,
  secure: true,
  sameSite: true,
  path: true,
  domain: true,
  allowedOrigins: true,
} as const satisfies Record<keyof RefreshCookieOptions, true>;

/** The keys of {@link RefreshTransportOptions} (checked at startup). */
export const REFRESH_TRANSPORT_OPTION_KEYS = {
  refreshTokenDelivery: true,
  cookie: COOKIE_KEYS,
} as const satisfies Record<keyof RefreshTransportOptions, true | object>;

/** The refresh cookie's attributes after defaults and validation. */
export interface ResolvedRefreshCookie {
  readonly name: string;
  readonly secure: boolean;
  readonly sameSite: 'strict' | 'lax' | 'none';
  readonly path: string;
  readonly domain: string | undefined;
  readonly allowedOrigins: readonly string[];
}

/** {@link RefreshTransportOptions} after defaults and validation. */
export interface ResolvedRefreshTransport {
  readonly refreshTokenDelivery: RefreshTokenDelivery;
  readonly cookie: ResolvedRefreshCookie;
}

function resolveAllowedOrigins(origins: string[] | undefined): string[] {
  if (origins === undefined) return [];
  const valid = (o: unknown) => typeof o === 'string' && /^https?:\/\/[^/]+$/.test(o) && URL.canParse(o);
  if (!Array.isArray(origins) || !origins.every(valid)) {
    throw new OtpAuthConfigurationError(
      '`cookie.allowedOrigins` must be origins like "https://app.example.com" (scheme and host, no path).',
    );
  }
  // As browsers serialise Origin: lower-case host, default port dropped (https://App.example.com:443).
  return origins.map((origin) => new URL(origin).origin);
}

/**
 * Validates how refresh tokens travel and fills in the defaults.
 *
 * @param options - The module's options (only these are read).
 * @param routePrefix - Where the auth routes are mounted: the cookie's default path.
 */
export function resolveRefreshTransport(
  options: RefreshTransportOptions,
  routePrefix: string,
): ResolvedRefreshTransport {
  const delivery = options.refreshTokenDelivery ?? REFRESH_TRANSPORT_DEFAULTS.refreshTokenDelivery;
  if (!['cookie', 'body', 'both'].includes(delivery)) {
    throw new OtpAuthConfigurationError(
      `\`refreshTokenDelivery\` must be 'cookie', 'body' or 'both' (got ${String(delivery)}).`,
    );
  }
  const sameSite = options.cookie?.sameSite ?? 'strict';
  if (!['strict', 'lax', 'none'].includes(sameSite)) {
    throw new OtpAuthConfigurationError(
      `\`cookie.sameSite\` must be 'strict', 'lax' or 'none' (got ${String(sameSite)}).`,
    );
  }
  const secure = options.cookie?.secure ?? true;
  if (sameSite === 'none' && !secure) {
    throw new OtpAuthConfigurationError(
      '`cookie.sameSite: none` requires `cookie.secure: true`; browsers drop such cookies.',
    );
  }
  const name = REFRESH_TRANSPORT_DEFAULTS.cookieName;
  return {
    refreshTokenDelivery: delivery,
    cookie: {
      // The __Secure- prefix stops non-HTTPS pages and sibling subdomains over HTTP from setting it.
      name: nonEmpty('cookie.name', options.cookie?.name, secure ? `__Secure-${name}` : name),
      secure,
      sameSite,
      path: nonEmpty('cookie.path', options.cookie?.path, `/${routePrefix}`),
      domain: options.cookie?.domain,
      allowedOrigins: resolveAllowedOrigins(options.cookie?.allowedOrigins),
    },
  };
}

/** What the HTTP layer (routes, cookie helpers, request guards) reads of the module's options. */
export interface HttpConfig extends ResolvedRefreshTransport {
  /** Where the auth routes are mounted, without slashes (`auth`). */
  readonly routePrefix: string;
  readonly rateLimits: Pick<ResolvedRateLimits, 'trustProxy'>;
}

/** DI token of {@link HttpConfig}. */
export const OTP_HTTP_CONFIG = Symbol('OTP_HTTP_CONFIG');
