import { RequestMethod, VersioningType, type INestApplication } from '@nestjs/common';
import type { Response } from 'supertest';
import { enabledBackends } from './support/databases.js';
import { capturedLogs } from './support/log-capture.js';
import { createTestApp, type Platform, type TestApp, type TestAppOptions } from './support/test-app.js';

const COOKIE = 'otp_refresh'; // the name test-app.ts configures

interface SetCookie {
  value: string;
  path: string | undefined;
  header: string;
}

function refreshSetCookie(res: Response): SetCookie {
  const raw = res.headers['set-cookie'] as unknown;
  const headers: string[] = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  const header = headers.find((h) => h.startsWith(`${COOKIE}=`));
  if (!header) throw new Error(`no ${COOKIE} cookie in ${JSON.stringify(headers)}`);
  const [pair, ...attributes] = header.split(';').map((part) => part.trim());
  const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.slice('path='.length);
  return { value: pair!.slice(COOKIE.length + 1), path, header };
}

/**
 * The Cookie header a browser would send to `requestPath` (RFC 6265 §5.1.4 path-match), or none:
 * supertest sends whatever it is given, so the test has to apply the Path rule itself.
 */
function browserCookie(cookie: SetCookie, requestPath: string): Record<string, string> {
  const path = cookie.path ?? '/';
  const matches =
    requestPath === path || (requestPath.startsWith(path) && (path.endsWith('/') || requestPath[path.length] === '/'));
  return matches ? { cookie: `${COOKIE}=${cookie.value}` } : {};
}

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

describe.each(cases)('refresh cookie under a global prefix (%s / %s)', (backend, platform) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const start = (beforeInit: (app: INestApplication) => void, more: Partial<TestAppOptions> = {}) =>
    createTestApp({ backend, platform, beforeInit, ...more });

  /** Signs in under `base` and returns the refresh cookie as set. */
  async function signIn(app: TestApp, base: string, email: string): Promise<SetCookie> {
    await app.http().post(`${base}/request-otp`).send({ email }).expect(200);
    const res = await app
      .http()
      .post(`${base}/verify-otp`)
      .send({ email, code: app.lastCode(email) })
      .expect(200);
    return refreshSetCookie(res);
  }

  it("setGlobalPrefix('api'): the cookie is scoped to /api/auth and a browser's refresh with it succeeds", async () => {
    t = await start((app) => app.setGlobalPrefix('api'));
    const email = 'prefix@example.com';
    const cookie = await signIn(t, '/api/auth', email);
    expect(cookie.path).toBe('/api/auth');

    const refreshed = await t.http().post('/api/auth/refresh').set(browserCookie(cookie, '/api/auth/refresh'));
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).toEqual(expect.any(String));
    const rotated = refreshSetCookie(refreshed);
    expect(rotated.path).toBe('/api/auth');
    expect(rotated.value).not.toBe(cookie.value);

    // Logout gets the cookie too, ends the session and clears the cookie on the same path.
    const out = await t.http().post('/api/auth/logout').set(browserCookie(rotated, '/api/auth/logout')).expect(200);
    expect(refreshSetCookie(out)).toMatchObject({ value: '', path: '/api/auth' });
    await t
      .http()
      .post('/api/auth/refresh')
      .set({ cookie: `${COOKIE}=${rotated.value}` })
      .expect(401);
    // The unprefixed routes do not exist.
    await t.http().post('/auth/refresh').expect(404);
  });

  it('a route prefix and a global prefix with slashes make one clean path', async () => {
    t = await start((app) => app.setGlobalPrefix('/api/'), { extras: { routePrefix: 'v2/login' } });
    const cookie = await signIn(t, '/api/v2/login', 'slashes@example.com');
    expect(cookie.path).toBe('/api/v2/login');
    await t.http().post('/api/v2/login/refresh').set(browserCookie(cookie, '/api/v2/login/refresh')).expect(200);
  });

  it('auth routes excluded from the global prefix keep the cookie at /auth', async () => {
    t = await start((app) =>
      app.setGlobalPrefix('api', { exclude: [{ path: 'auth/*path', method: RequestMethod.ALL }] }),
    );
    const cookie = await signIn(t, '/auth', 'excluded@example.com');
    expect(cookie.path).toBe('/auth');
    await t.http().post('/auth/refresh').set(browserCookie(cookie, '/auth/refresh')).expect(200);
  });

  it('URI versioning with a default version is part of the path', async () => {
    t = await start((app) => {
      app.setGlobalPrefix('api');
      app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });
    });
    const cookie = await signIn(t, '/api/v1/auth', 'versioned@example.com');
    expect(cookie.path).toBe('/api/v1/auth');
    await t.http().post('/api/v1/auth/refresh').set(browserCookie(cookie, '/api/v1/auth/refresh')).expect(200);
  });

  it('two default URI versions widen the derived path to what covers both, with a startup warning', async () => {
    const before = capturedLogs.length;
    t = await start((app) => {
      app.setGlobalPrefix('api');
      app.enableVersioning({ type: VersioningType.URI, defaultVersion: ['1', '2'] });
    });
    const warnings = capturedLogs
      .slice(before)
      .filter((line) => line.startsWith('warn ') && line.includes('refresh cookie'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("the refresh cookie's path is '/api'");
    expect(warnings[0]).toContain('/api/v1/auth and /api/v2/auth');
    const cookie = await signIn(t, '/api/v1/auth', 'two-versions@example.com');
    expect(cookie.path).toBe('/api');
  });

  it('an explicit cookie.path that misses the routes is kept, with a startup warning that says what to set', async () => {
    const before = capturedLogs.length;
    t = await start((app) => app.setGlobalPrefix('api'), {
      options: { cookie: { secure: true, name: COOKIE, path: '/auth' } },
    });
    const warnings = capturedLogs
      .slice(before)
      .filter((line) => line.startsWith('warn ') && line.includes('cookie.path'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      "`cookie.path` is '/auth', but the refresh cookie is read at /api/auth/refresh and /api/auth/logout (global prefix 'api')",
    );
    expect(warnings[0]).toContain("Set `cookie.path: '/api/auth'`");
    // As configured: the app asked for it (and a browser would not send it to the refresh route).
    const cookie = await signIn(t, '/api/auth', 'explicit@example.com');
    expect(cookie.path).toBe('/auth');
    await t.http().post('/api/auth/refresh').set(browserCookie(cookie, '/api/auth/refresh')).expect(401);
  });

  it('an explicit cookie.path that covers the routes gives no warning', async () => {
    const before = capturedLogs.length;
    t = await start((app) => app.setGlobalPrefix('api'), {
      options: { cookie: { secure: true, name: COOKIE, path: '/api' } },
    });
    expect(capturedLogs.slice(before).filter((line) => line.includes('cookie.path'))).toEqual([]);
    const cookie = await signIn(t, '/api/auth', 'covering@example.com');
    expect(cookie.path).toBe('/api');
    await t.http().post('/api/auth/refresh').set(browserCookie(cookie, '/api/auth/refresh')).expect(200);
  });

  it('without a global prefix the cookie path stays /auth', async () => {
    t = await start(() => undefined);
    const cookie = await signIn(t, '/auth', 'plain@example.com');
    expect(cookie.path).toBe('/auth');
    await t.http().post('/auth/refresh').set(browserCookie(cookie, '/auth/refresh')).expect(200);
  });
});
