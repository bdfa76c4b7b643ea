/** HTTP method of a route the server module mounts. */
export type OtpAuthRouteMethod = 'GET' | 'POST';

/** One route of the server module, relative to its prefix, and the SDK method that calls it. */
export interface OtpAuthRouteSpec {
  /** HTTP method. */
  readonly method: OtpAuthRouteMethod;
  /** Path under the prefix, without a leading slash (`totp/setup`). */
  readonly path: string;
  /**
   * The class whose method calls it: {@link OtpAuthClient} (sessions, for browsers and apps) or
   * {@link OtpAuthServerClient} (other services checking tokens). The key of the entry in
   * {@link OTP_AUTH_ROUTES} is the method's name (`totp.setup` is `client.totp.setup()`).
   */
  readonly client: 'OtpAuthClient' | 'OtpAuthServerClient';
}

/**
 * Every route `OtpAuthModule` mounts (under its `routePrefix`), keyed by the SDK method that
 * calls it. The repository's e2e test compares this table with the sample app's OpenAPI
 * document, so a route added to the server without an SDK method fails the build.
 */
export const OTP_AUTH_ROUTES = {
  /** `OtpAuthClient.requestOtp`: send a sign-in code. */
  requestOtp: { method: 'POST', path: 'request-otp', client: 'OtpAuthClient' },
  /** `OtpAuthClient.verifyOtp`: exchange the code for a session or an MFA challenge. */
  verifyOtp: { method: 'POST', path: 'verify-otp', client: 'OtpAuthClient' },
  /** `OtpAuthClient.verifyMfa`: complete a two-factor sign-in. */
  verifyMfa: { method: 'POST', path: 'totp/verify', client: 'OtpAuthClient' },
  /** `OtpAuthClient.refresh`: rotate the refresh token, get a new access token. */
  refresh: { method: 'POST', path: 'refresh', client: 'OtpAuthClient' },
  /** `OtpAuthClient.logout`: end this session. */
  logout: { method: 'POST', path: 'logout', client: 'OtpAuthClient' },
  /** `OtpAuthClient.logoutAll`: end every session of the user. */
  logoutAll: { method: 'POST', path: 'logout-all', client: 'OtpAuthClient' },
  /** `OtpAuthClient.totp.setup`: start enrolling an authenticator app. */
  'totp.setup': { method: 'POST', path: 'totp/setup', client: 'OtpAuthClient' },
  /** `OtpAuthClient.totp.qrCode`: the pending enrolment's QR code (PNG). */
  'totp.qrCode': { method: 'GET', path: 'totp/qr', client: 'OtpAuthClient' },
  /** `OtpAuthClient.totp.confirm`: activate two-factor with a code. */
  'totp.confirm': { method: 'POST', path: 'totp/confirm', client: 'OtpAuthClient' },
  /** `OtpAuthClient.totp.disable`: turn two-factor off. */
  'totp.disable': { method: 'POST', path: 'totp/disable', client: 'OtpAuthClient' },
  /** `OtpAuthClient.totp.regenerateBackupCodes`: replace the backup codes. */
  'totp.regenerateBackupCodes': { method: 'POST', path: 'totp/backup-codes', client: 'OtpAuthClient' },
  /** `OtpAuthServerClient.introspect`: RFC 7662 introspection with an API key. */
  introspect: { method: 'POST', path: 'introspect', client: 'OtpAuthServerClient' },
  /** `OtpAuthServerClient.verifyToken`: the gateway check (`X-Auth-User`, `X-Auth-Claims`). */
  verifyToken: { method: 'GET', path: 'verify', client: 'OtpAuthServerClient' },
} as const satisfies Record<string, OtpAuthRouteSpec>;

/** Name of a route in {@link OTP_AUTH_ROUTES} (the SDK method that calls it). */
export type OtpAuthRouteName = keyof typeof OTP_AUTH_ROUTES;

/** The server module's default `routePrefix`. */
export const DEFAULT_ROUTE_PREFIX = '/auth';

/**
 * The URL of a route: `baseUrl` (no trailing slash needed), the prefix, the route's path.
 *
 * @param baseUrl - Origin and optional path of the service (`https://auth.example.com`, `https://example.com/api`);
 *   `''` for same-origin relative URLs in a browser.
 * @param prefix - The module's `routePrefix` (`/auth`, `auth/`, `''`).
 * @param route - The route.
 * @returns E.g. `https://auth.example.com/auth/totp/setup`, or `/auth/refresh` for `baseUrl: ''`.
 */
export function routeUrl(baseUrl: string, prefix: string, route: OtpAuthRouteName): string {
  const base = baseUrl.replace(/\/+$/, '');
  const trimmedPrefix = prefix.replace(/^\/+|\/+$/g, '');
  return `${base}${trimmedPrefix ? `/${trimmedPrefix}` : ''}/${OTP_AUTH_ROUTES[route].path}`;
}
