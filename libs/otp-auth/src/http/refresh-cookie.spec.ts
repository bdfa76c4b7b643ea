import { jest } from '@jest/globals';
import { Logger, RequestMethod, VERSION_NEUTRAL, VersioningType } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import {
  cookiePathCovers,
  RefreshCookiePathCheck,
  refreshCookieRoutePaths,
  refreshCookieSettings,
} from './refresh-cookie.js';

type CookieConfig = ResolvedOtpAuthOptions['cookie'];

const COOKIE: CookieConfig = {
  name: '__Secure-otp_refresh',
  secure: true,
  sameSite: 'strict',
  path: '/auth',
  domain: undefined,
  allowedOrigins: [],
};

/** An exclusion as `setGlobalPrefix(prefix, { exclude })` stores it (Nest compiles the path to a RegExp). */
function exclusion(pathRegex: RegExp, requestMethod = RequestMethod.ALL) {
  return { path: pathRegex.source, pathRegex, requestMethod };
}

function appWith(prefix: string, exclude: ReturnType<typeof exclusion>[] = []): ApplicationConfig {
  const app = new ApplicationConfig();
  app.setGlobalPrefix(prefix);
  app.setGlobalPrefixOptions({ exclude });
  return app;
}

describe('refresh cookie path', () => {
  it('cookiePathCovers follows RFC 6265 path-match', () => {
    expect(cookiePathCovers('/api/auth', '/api/auth/refresh')).toBe(true);
    expect(cookiePathCovers('/api/auth', '/api/auth')).toBe(true);
    expect(cookiePathCovers('/api/', '/api/auth/refresh')).toBe(true);
    expect(cookiePathCovers('/', '/api/auth/refresh')).toBe(true);
    expect(cookiePathCovers('/auth', '/api/auth/refresh')).toBe(false);
    expect(cookiePathCovers('/api/au', '/api/auth/refresh')).toBe(false);
  });

  it('the routes that read the cookie, under the global prefix unless excluded', () => {
    expect(refreshCookieRoutePaths('auth', undefined)).toEqual(['/auth/refresh', '/auth/logout']);
    expect(refreshCookieRoutePaths('auth', appWith(''))).toEqual(['/auth/refresh', '/auth/logout']);
    expect(refreshCookieRoutePaths('auth', appWith('api'))).toEqual(['/api/auth/refresh', '/api/auth/logout']);
    expect(refreshCookieRoutePaths('auth', appWith('/api/v2/'))).toEqual([
      '/api/v2/auth/refresh',
      '/api/v2/auth/logout',
    ]);
    // An exclusion of only GET routes does not move POST /auth/refresh.
    expect(
      refreshCookieRoutePaths('auth', appWith('api', [exclusion(/^\/auth(?:\/.*)?$/, RequestMethod.GET)])),
    ).toEqual(['/api/auth/refresh', '/api/auth/logout']);
    expect(
      refreshCookieRoutePaths('auth', appWith('api', [exclusion(/^\/auth\/refresh$/, RequestMethod.POST)])),
    ).toEqual(['/auth/refresh', '/api/auth/logout']);
  });

  it('URI versioning: every default version, a custom marker, and VERSION_NEUTRAL', () => {
    const app = appWith('api');
    app.enableVersioning({ type: VersioningType.URI, defaultVersion: ['1', VERSION_NEUTRAL], prefix: 'version' });
    expect(refreshCookieRoutePaths('auth', app)).toEqual([
      '/api/version1/auth/refresh',
      '/api/auth/refresh',
      '/api/version1/auth/logout',
      '/api/auth/logout',
    ]);
    const header = appWith('api');
    header.enableVersioning({ type: VersioningType.HEADER, header: 'x-version', defaultVersion: '1' });
    expect(refreshCookieRoutePaths('auth', header)).toEqual(['/api/auth/refresh', '/api/auth/logout']);
  });

  it('a default path follows the global prefix when read, as the app sets it after the module is built', () => {
    const app = new ApplicationConfig();
    const cookie = refreshCookieSettings(
      COOKIE,
      { routePrefix: 'auth', explicitPath: false, routesMounted: true },
      app,
    );
    expect(cookie.path).toBe('/auth');
    app.setGlobalPrefix('api');
    expect(cookie.path).toBe('/api/auth');
    // Spread or compared, the settings still carry the path.
    expect({ ...cookie }).toEqual({ ...COOKIE, path: '/api/auth' });
    // Routes split by an exclusion: the narrowest path that reaches both.
    app.setGlobalPrefixOptions({ exclude: [exclusion(/^\/auth\/refresh$/)] });
    expect(cookie.path).toBe('/');
  });

  it('an explicit path, unmounted routes or no application leave the resolved settings alone', () => {
    const app = appWith('api');
    expect(refreshCookieSettings(COOKIE, { routePrefix: 'auth', explicitPath: true, routesMounted: true }, app)).toBe(
      COOKIE,
    );
    expect(refreshCookieSettings(COOKIE, { routePrefix: 'auth', explicitPath: false, routesMounted: false }, app)).toBe(
      COOKIE,
    );
    expect(
      refreshCookieSettings(COOKIE, { routePrefix: 'auth', explicitPath: false, routesMounted: true }, undefined),
    ).toBe(COOKIE);
  });

  describe('startup warning for an explicit path', () => {
    let warn: jest.SpiedFunction<Logger['warn']>;
    beforeEach(() => {
      warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    });
    afterEach(() => warn.mockRestore());

    const config = (path: string, refreshTokenDelivery: 'cookie' | 'body' = 'cookie') =>
      ({ cookie: { ...COOKIE, path }, routePrefix: 'auth', refreshTokenDelivery }) as ResolvedOtpAuthOptions;

    it('says what to set when the path misses the routes', () => {
      new RefreshCookiePathCheck(config('/auth'), true, true, appWith('api')).onModuleInit();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[0]).toBe(
        "`cookie.path` is '/auth', but the refresh cookie is read at /api/auth/refresh and /api/auth/logout " +
          "(global prefix 'api'): browsers will not send it there, so refresh will answer 401 and logout will not " +
          "end the session. Set `cookie.path: '/api/auth'`, or leave `cookie.path` out to have it follow the global prefix.",
      );
    });

    it('stays quiet when the path covers the routes, is derived, or no cookie is used', () => {
      new RefreshCookiePathCheck(config('/api'), true, true, appWith('api')).onModuleInit();
      new RefreshCookiePathCheck(config('/'), true, true, appWith('api')).onModuleInit();
      new RefreshCookiePathCheck(config('/auth'), false, true, appWith('api')).onModuleInit();
      new RefreshCookiePathCheck(config('/auth'), true, false, appWith('api')).onModuleInit();
      new RefreshCookiePathCheck(config('/auth', 'body'), true, true, appWith('api')).onModuleInit();
      expect(warn).not.toHaveBeenCalled();
    });
  });
});
