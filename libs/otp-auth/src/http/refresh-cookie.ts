import { parse, serialize, type SerializeOptions } from 'cookie';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import type { AuthRequest } from '../guards/auth-request.js';

/** The parts of an Express or Fastify response the module writes. */
export interface AuthResponse {
  header(name: string, value: string): unknown;
}

type CookieConfig = ResolvedOtpAuthOptions['cookie'];

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
 * Whether a cookie-carrying request comes from another site: not from one of `allowedOrigins`,
 * and `Sec-Fetch-Site: cross-site` or an `Origin` whose host is not this request's `Host`. Requests without
 * either header (curl, server-to-server) are not browsers' cross-site requests and pass.
 * SameSite=Strict already keeps the cookie off such requests in current browsers; this refuses
 * them where a browser, a proxy or a `sameSite: 'none'` setting would let it through.
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
