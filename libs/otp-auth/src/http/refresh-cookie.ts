import { Logger, RequestMethod, VERSION_NEUTRAL, VersioningType, type OnModuleInit } from '@nestjs/common';
import type { ApplicationConfig } from '@nestjs/core';
import { parse, serialize, type SerializeOptions } from 'cookie';
import type { HttpConfig, ResolvedRefreshCookie } from './refresh-transport.options.js';
import type { AuthRequest } from './auth-request.js';

/** The parts of an Express or Fastify response the module writes. */
export interface AuthResponse {
  header(name: string, value: string): unknown;
}

type CookieConfig = ResolvedRefreshCookie;

/** The routes that read the refresh cookie, so the routes its `Path` must cover. */
const COOKIE_ROUTES = ['refresh', 'logout'] as const;

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/**
 * Where the app serves the routes that read the refresh cookie (`POST <routePrefix>/refresh` and
 * `logout`), as Nest's router builds their paths: URI version (our controllers declare none, so the
 * app's `defaultVersion`), then the global prefix unless `exclude` matches the unprefixed path.
 * `RouterModule` paths are not seen; give `cookie.path` explicitly with those.
 *
 * @param routePrefix - The module's `routePrefix`.
 * @param app - Nest's `ApplicationConfig`; read after `setGlobalPrefix`/`enableVersioning`, which
 *   apps call after the module is built.
 * @returns Absolute paths, e.g. `['/api/auth/refresh', '/api/auth/logout']`.
 */
export function refreshCookieRoutePaths(routePrefix: string, app: ApplicationConfig | undefined): string[] {
  const globalPrefix = trimSlashes(app?.getGlobalPrefix() ?? '');
  const exclude = app?.getGlobalPrefixOptions().exclude ?? [];
  const versioning = app?.getVersioning();
  let versionPaths = [''];
  if (versioning?.type === VersioningType.URI && versioning.defaultVersion !== undefined) {
    const marker = versioning.prefix === false ? '' : (versioning.prefix ?? 'v');
    const versions = Array.isArray(versioning.defaultVersion) ? versioning.defaultVersion : [versioning.defaultVersion];
    versionPaths = versions.map((v) => (v === VERSION_NEUTRAL ? '' : `/${marker}${String(v)}`));
  }
  const prefix = trimSlashes(routePrefix);
  return COOKIE_ROUTES.flatMap((route) => {
    const path = `/${prefix ? `${prefix}/` : ''}${route}`;
    const excluded = exclude.some(
      (e) =>
        (e.requestMethod === RequestMethod.ALL || e.requestMethod === RequestMethod.POST) && e.pathRegex.test(path),
    );
    const base = globalPrefix && !excluded ? `/${globalPrefix}` : '';
    return versionPaths.map((version) => `${base}${version}${path}`);
  });
}

/**
 * Whether a browser sends a cookie with this `Path` to this request path (RFC 6265 §5.1.4): the
 * same path, or a parent directory of it (`/api` covers `/api/auth`, not `/apiary`).
 */
export function cookiePathCovers(cookiePath: string, requestPath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/** The deepest directory containing every path: the narrowest cookie `Path` that reaches them all. */
function commonDirectory(paths: readonly string[]): string {
  const dirs = paths.map((p) => p.split('/').filter(Boolean).slice(0, -1));
  const first = dirs[0] ?? [];
  let length = 0;
  while (length < first.length && dirs.every((d) => d[length] === first[length])) length++;
  return `/${first.slice(0, length).join('/')}`;
}

/**
 * The refresh cookie's settings as the module uses them. Without an explicit `cookie.path`, the path
 * follows where the auth routes are mounted: the app sets its global prefix after the module is
 * built, so the path is worked out when a cookie is written, not when the options are resolved.
 *
 * @param cookie - The resolved settings (`path` is `/<routePrefix>` unless given).
 * @param mount - `explicitPath`: `cookie.path` was given; `routesMounted`: `mountRoutes` is not false
 *   (without our routes there is nothing to follow).
 * @param app - Nest's `ApplicationConfig`, absent outside an application.
 */
export function refreshCookieSettings(
  cookie: CookieConfig,
  mount: { readonly routePrefix: string; readonly explicitPath: boolean; readonly routesMounted: boolean },
  app: ApplicationConfig | undefined,
): CookieConfig {
  if (mount.explicitPath || !mount.routesMounted || app === undefined) return cookie;
  const { path: _fallback, ...rest } = cookie;
  // An own enumerable getter, so spreading or comparing the settings still sees a path.
  return {
    ...rest,
    get path(): string {
      return commonDirectory(refreshCookieRoutePaths(mount.routePrefix, app));
    },
  };
}

/**
 * Warns at startup when an explicit `cookie.path` does not cover the routes that read the cookie
 * (typically `/auth` under a global prefix): browsers would never send it and every refresh would
 * answer 401 without a hint. Runs at module init, after the app has set its global prefix.
 */
export class RefreshCookiePathCheck implements OnModuleInit {
  private readonly logger = new Logger('OtpAuth');

  /**
   * @param config - The module's resolved options.
   * @param explicitPath - Whether `cookie.path` was given (a derived path always fits).
   * @param routesMounted - Whether the module's routes are mounted.
   * @param app - Nest's `ApplicationConfig`.
   */
  constructor(
    private readonly config: Pick<HttpConfig, 'cookie' | 'routePrefix' | 'refreshTokenDelivery'>,
    private readonly explicitPath: boolean,
    private readonly routesMounted: boolean,
    private readonly app: ApplicationConfig | undefined,
  ) {}

  /** Logs the warning, if any. */
  onModuleInit(): void {
    if (!this.routesMounted || this.config.refreshTokenDelivery === 'body') return;
    const { path } = this.config.cookie;
    const routes = refreshCookieRoutePaths(this.config.routePrefix, this.app);
    if (!this.explicitPath) {
      // Routes in several directories (two URI versions, an exclude that splits refresh from logout)
      // give a derived path above them all: the token would then travel to other routes of the app.
      const directories = new Set(routes.map((route) => route.slice(0, route.lastIndexOf('/'))));
      if (directories.size > 1) {
        this.logger.warn(
          `the refresh cookie's path is '${path}', because the routes that read it are served under ` +
            `${[...directories].join(' and ')}: the refresh token is then sent to every route under '${path}'. ` +
            'Set `cookie.path` to the one your clients use (or give the auth routes one version).',
        );
      }
      return;
    }
    const missed = routes.filter((route) => !cookiePathCovers(path, route));
    if (missed.length === 0) return;
    const globalPrefix = trimSlashes(this.app?.getGlobalPrefix() ?? '');
    this.logger.warn(
      `\`cookie.path\` is '${path}', but the refresh cookie is read at ${missed.join(' and ')}` +
        `${globalPrefix ? ` (global prefix '${globalPrefix}')` : ''}: browsers will not send it there, so refresh ` +
        `will answer 401 and logout will not end the session. Set \`cookie.path: '${commonDirectory(routes)}'\`, ` +
        'or leave `cookie.path` out to have it follow the global prefix.',
    );
  }
}

function attributes(cookie: CookieConfig, maxAge: number): SerializeOptions {
  return {
    httpOnly: true,
    secure: cookie.secure,
    sameSite: cookie.sameSite,
    path: cookie.path,
    domain: cookie.domain,
    maxAge,
  };
}

/** Sets the refresh-token cookie. */
export function setRefreshCookie(response: AuthResponse, cookie: CookieConfig, token: string, maxAge: number): void {
  response.header('Set-Cookie', serialize(cookie.name, token, attributes(cookie, maxAge)));
}

/** Clears the cookie with the same attributes it was set with (browsers match on them). */
export function clearRefreshCookie(response: AuthResponse, cookie: CookieConfig): void {
  response.header('Set-Cookie', serialize(cookie.name, '', { ...attributes(cookie, 0), expires: new Date(0) }));
}

/**
 * The refresh token from the cookie, if the request has exactly one. Two cookies of the same name
 * mean one was planted (e.g. by a sibling subdomain with a narrower path): neither is trusted.
 */
export function refreshTokenFromCookie(request: AuthRequest, cookie: CookieConfig): string | undefined {
  const header = request.headers['cookie'];
  if (typeof header !== 'string') return undefined;
  let count = 0;
  for (const part of header.split(';')) {
    if (part.slice(0, part.indexOf('=')).trim() === cookie.name) count++;
  }
  if (count !== 1) return undefined;
  const value = parse(header)[cookie.name];
  return value ? value : undefined;
}

/**
 * Whether a request comes from another site: not from one of `allowedOrigins`, and
 * `Sec-Fetch-Site: cross-site` or an `Origin` whose host is not this request's `Host`. Requests
 * without either header (curl, server-to-server) are not browsers' cross-site requests and pass.
 * `RefreshCookieOriginGuard` applies it to every route that sets or clears the refresh cookie:
 * SameSite=Strict keeps the cookie off cross-site requests, but not off their answers (a top-level
 * form post to `verify-otp` would store the attacker's session: login CSRF), nor where a proxy or
 * `sameSite: 'none'` lets it through.
 */
export function isCrossSite(request: AuthRequest, allowedOrigins: readonly string[]): boolean {
  const origin = request.headers['origin'];
  // A listed origin is admitted even from another site (an app at app.example on an API at
  // auth.example.net, with sameSite 'none'); browsers always send Origin on such POSTs.
  if (typeof origin === 'string' && allowedOrigins.includes(origin)) return false;
  if (request.headers['sec-fetch-site'] === 'cross-site') return true;
  if (typeof origin !== 'string' || origin === '') return false;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return true; // "null" (sandboxed frames, file:) and garbage
  }
  // Host, not X-Forwarded-Host: behind a proxy that rewrites Host, list the site in allowedOrigins.
  const host = request.headers['host'];
  return typeof host !== 'string' || originHost.toLowerCase() !== host.trim().toLowerCase();
}
