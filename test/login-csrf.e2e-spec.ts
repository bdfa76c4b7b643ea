import type { Response } from 'supertest';
import type { RefreshTokenDelivery } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, type Platform, type TestApp } from './support/test-app.js';
import { codeAt, enroll, firstFactor } from './support/totp-helpers.js';

/**
 * Login CSRF and cross-site cookie clearing: every route that sets or clears the refresh cookie
 * refuses cross-site requests (403) whether or not a cookie is presented, and the module's POST
 * routes take JSON only (415), so a form on another site can neither sign the browser into the
 * attacker's account nor end its session. Each refusal is checked to change nothing.
 */
const API_KEY = 'introspection-key-0123456789abcdef0123';
const LISTED = 'https://app.example';
const EVIL = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

function setCookies(res: Response): string[] {
  const raw = res.headers['set-cookie'] as unknown;
  return Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
}

describe.each(cases)('login CSRF and cross-site cookie clearing on %s / %s', (backend, platform) => {
  let t: TestApp;
  let n = 0;
  /** An address of its own per use: no resend cooldown to wait out. */
  const fresh = (label: string) => `${label}-${(n += 1)}@example.com`;

  beforeAll(async () => {
    t = await createTestApp({
      backend,
      platform,
      options: {
        cookie: { secure: true, name: 'otp_refresh', allowedOrigins: [LISTED] },
        tokenEndpoints: { introspectionApiKeys: [API_KEY] },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function requestCode(email: string): Promise<string> {
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    return t.lastCode(email);
  }

  const sessions = async () =>
    Number(((await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_sessions')) as { n: number | string }[])[0]!.n);

  /** The legitimate, same-site sign-in with the code: it must still work after a refused attempt. */
  async function signInWith(email: string, code: string): Promise<Response> {
    const res = await t.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    expect(refreshCookie(res)).toEqual(expect.any(String));
    return res;
  }

  /** A refused sign-in changed nothing: no cookie, no user, no session. */
  async function expectNothingChanged(res: Response, email: string, sessionsBefore: number): Promise<void> {
    expect(setCookies(res)).toEqual([]);
    expect(res.body).not.toHaveProperty('access_token');
    expect(await t.store.findUserByEmail(email)).toBeNull();
    expect(await sessions()).toBe(sessionsBefore);
  }

  describe('POST /verify-otp', () => {
    it('refuses a cross-site form post (the login CSRF) and leaves the code for the real sign-in', async () => {
      const email = fresh('form');
      const code = await requestCode(email);
      const before = await sessions();
      const attack = await t.http().post('/auth/verify-otp').set(EVIL).type('form').send({ email, code });
      expect(attack.status).toBe(403);
      await expectNothingChanged(attack, email, before);
      await signInWith(email, code);
    });

    it('refuses a form-encoded body from anywhere with 415', async () => {
      const email = fresh('form-local');
      const code = await requestCode(email);
      const before = await sessions();
      const res = await t.http().post('/auth/verify-otp').type('form').send({ email, code });
      expect(res.status).toBe(415);
      await expectNothingChanged(res, email, before);
      await signInWith(email, code);
    });

    it.each([
      ['Origin: https://evil.example', { origin: 'https://evil.example' }],
      ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Origin: null (sandboxed frame)', { origin: 'null' }],
      ['an Origin ending in this host', { host: 'api.example', origin: 'https://api.example.evil.example' }],
    ])('refuses a cross-site JSON sign-in (%s) with 403: no cookie, code not consumed', async (_, headers) => {
      const email = fresh('json');
      const code = await requestCode(email);
      const before = await sessions();
      const res = await t.http().post('/auth/verify-otp').set(headers).send({ email, code });
      expect(res.status).toBe(403);
      expect(res.body.message).toContain('Cross-site');
      await expectNothingChanged(res, email, before);
      await signInWith(email, code);
    });

    it.each([
      [
        'a listed origin (cookie.allowedOrigins), even from another site',
        { origin: LISTED, 'sec-fetch-site': 'cross-site' },
      ],
      ['the same origin', { host: 'api.example', origin: 'https://api.example', 'sec-fetch-site': 'same-origin' }],
      ['no Origin and no Sec-Fetch-Site (curl, servers)', {}],
    ])('signs in from %s and sets the cookie', async (_, headers) => {
      const email = fresh('ok');
      const code = await requestCode(email);
      const res = await t.http().post('/auth/verify-otp').set(headers).send({ email, code }).expect(200);
      expect(refreshCookie(res)).toEqual(expect.any(String));
    });
  });

  describe('the TOTP routes that open a session', () => {
    it('POST /totp/verify refuses a cross-site request; the challenge and the code still work same-site', async () => {
      const email = fresh('mfa');
      const { secret } = await enroll(t, email);
      const mfaToken = await firstFactor(t, email);
      const before = await sessions();
      const body = { mfa_token: mfaToken, code: codeAt(t, secret) };
      const attack = await t.http().post('/auth/totp/verify').set(EVIL).send(body);
      expect(attack.status).toBe(403);
      expect(setCookies(attack)).toEqual([]);
      expect(await sessions()).toBe(before);
      const ok = await t.http().post('/auth/totp/verify').send(body).expect(200);
      expect(refreshCookie(ok)).toEqual(expect.any(String));
    });

    it('POST /totp/confirm refuses a cross-site request; the enrolment is confirmed same-site with the same code', async () => {
      const login = await signIn(t, fresh('confirm'));
      const auth = `Bearer ${login.body.access_token as string}`;
      const setup = await t.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
      const code = codeAt(t, (setup.body as { secret: string }).secret);
      const attack = await t.http().post('/auth/totp/confirm').set(EVIL).set('authorization', auth).send({ code });
      expect(attack.status).toBe(403);
      expect(setCookies(attack)).toEqual([]);
      expect(attack.body).not.toHaveProperty('backup_codes');
      const ok = await t.http().post('/auth/totp/confirm').set('authorization', auth).send({ code }).expect(200);
      expect(refreshCookie(ok)).toEqual(expect.any(String));
    });
  });

  describe('refresh, logout and logout-all', () => {
    it('POST /refresh refuses a cross-site request even without a cookie', async () => {
      const res = await t.http().post('/auth/refresh').set(EVIL);
      expect(res.status).toBe(403);
      expect(setCookies(res)).toEqual([]);
    });

    it('POST /logout refuses a cross-site request, with or without the cookie, and clears nothing', async () => {
      const login = await signIn(t, fresh('logout'));
      const cookie = `otp_refresh=${refreshCookie(login)!}`;
      const auth = `Bearer ${login.body.access_token as string}`;
      for (const withCookie of [true, false]) {
        const req = t.http().post('/auth/logout').set(EVIL);
        const res = await (withCookie ? req.set('cookie', cookie) : req);
        expect(res.status).toBe(403);
        expect(setCookies(res)).toEqual([]);
      }
      // The session is intact.
      await t.http().get('/protected').set('authorization', auth).expect(200);
      const refreshed = await t.http().post('/auth/refresh').set('cookie', cookie).expect(200);
      expect(refreshCookie(refreshed)).toEqual(expect.any(String));
    });

    it('POST /logout without a cookie answers 200, ends the bearer session, and sends no clearing cookie', async () => {
      const login = await signIn(t, fresh('nocookie'));
      const auth = `Bearer ${login.body.access_token as string}`;
      const res = await t.http().post('/auth/logout').set('authorization', auth).expect(200);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(setCookies(res)).toEqual([]);
      await t.http().get('/protected').set('authorization', auth).expect(401);
      const bare = await t.http().post('/auth/logout').expect(200);
      expect(setCookies(bare)).toEqual([]);
    });

    it('POST /logout with the cookie, same-site and without a Content-Type, ends the session and clears it', async () => {
      const login = await signIn(t, fresh('withcookie'));
      const cookie = `otp_refresh=${refreshCookie(login)!}`;
      const res = await t.http().post('/auth/logout').set('cookie', cookie).expect(200);
      expect(res.request.get('content-type')).toBeUndefined();
      const [cleared, ...others] = setCookies(res);
      expect(others).toEqual([]);
      expect(cleared).toMatch(/^otp_refresh=;/);
      await t.http().post('/auth/refresh').set('cookie', cookie).expect(401);
    });

    it('POST /logout-all refuses a cross-site request and revokes nothing; clears the cookie only when sent', async () => {
      const email = fresh('all');
      const login = await signIn(t, email);
      const cookie = `otp_refresh=${refreshCookie(login)!}`;
      const auth = `Bearer ${login.body.access_token as string}`;
      const attack = await t.http().post('/auth/logout-all').set(EVIL).set('authorization', auth).set('cookie', cookie);
      expect(attack.status).toBe(403);
      expect(setCookies(attack)).toEqual([]);
      await t.http().get('/protected').set('authorization', auth).expect(200);

      const withoutCookie = await t.http().post('/auth/logout-all').set('authorization', auth).expect(200);
      expect(withoutCookie.body.revoked_sessions).toBe(1);
      expect(setCookies(withoutCookie)).toEqual([]);

      t.clock.advance(61);
      const again = await signIn(t, email);
      const withCookie = await t
        .http()
        .post('/auth/logout-all')
        .set('authorization', `Bearer ${again.body.access_token as string}`)
        .set('cookie', `otp_refresh=${refreshCookie(again)!}`)
        .expect(200);
      expect(setCookies(withCookie)).toEqual([expect.stringMatching(/^otp_refresh=;/)]);
    });

    it('POST /refresh with the cookie and no Content-Type works', async () => {
      const login = await signIn(t, fresh('refresh'));
      const res = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(login)!}`)
        .expect(200);
      expect(res.request.get('content-type')).toBeUndefined();
      expect(refreshCookie(res)).toEqual(expect.any(String));
    });
  });

  describe('request bodies', () => {
    it.each([
      ['text/plain (a CORS-simple fetch)', 'text/plain', (email: string) => JSON.stringify({ email })],
      ['text/plain; charset=utf-8', 'text/plain; charset=utf-8', (email: string) => JSON.stringify({ email })],
      ['form-encoded', 'application/x-www-form-urlencoded', (email: string) => `email=${encodeURIComponent(email)}`],
      [
        'multipart',
        'multipart/form-data; boundary=X',
        (email: string) => `--X\r\nContent-Disposition: form-data; name="email"\r\n\r\n${email}\r\n--X--\r\n`,
      ],
      ['application/vnd.api+json', 'application/vnd.api+json', (email: string) => JSON.stringify({ email })],
    ])('POST /request-otp refuses a %s body with 415 and sends no code', async (_, type, encode) => {
      const email = fresh('type');
      const res = await t.http().post('/auth/request-otp').set('content-type', type).send(encode(email));
      expect(res.status).toBe(415);
      expect(t.sent.filter((s) => s.email === email)).toEqual([]);
    });

    it('POST /request-otp refuses a body without a Content-Type with 415', async () => {
      const email = fresh('untyped');
      const res = await t
        .http()
        .post('/auth/request-otp')
        .send(Buffer.from(JSON.stringify({ email })));
      expect(res.request.get('content-type')).toBeUndefined();
      expect(res.status).toBe(415);
      expect(t.sent.filter((s) => s.email === email)).toEqual([]);
    });

    it('POST /request-otp takes application/json with a charset, in any case', async () => {
      for (const type of ['application/json; charset=utf-8', 'Application/JSON; Charset=UTF-8']) {
        const email = fresh('json-charset');
        await t.http().post('/auth/request-otp').set('content-type', type).send(JSON.stringify({ email })).expect(200);
        expect(t.sent.filter((s) => s.email === email)).toHaveLength(1);
      }
    });

    it('POST /introspect still takes form-encoded bodies (RFC 7662), and JSON, but not text/plain', async () => {
      const token = (await signIn(t, fresh('introspect'))).body.access_token as string;
      const introspect = () => t.http().post('/auth/introspect').set('authorization', `Bearer ${API_KEY}`);
      const form = await introspect().type('form').send({ token }).expect(200);
      expect(form.body.active).toBe(true);
      const json = await introspect().send({ token }).expect(200);
      expect(json.body.active).toBe(true);
      const text = await introspect().set('content-type', 'text/plain').send(`token=${token}`);
      expect(text.status).toBe(415);
    });
  });
});

describe.each(cases)('refusals before any counting, and per delivery mode, on %s / %s', (backend, platform) => {
  it('refused cross-site and form-encoded sign-ins do not count against the verify rate limit', async () => {
    const t = await createTestApp({
      backend,
      platform,
      options: { rateLimits: { enabled: true, verify: { perEmail: { limit: 1, window: 600 } } } },
    });
    try {
      const email = 'counted@example.com';
      await t.http().post('/auth/request-otp').send({ email }).expect(200);
      const code = t.lastCode(email);
      for (let i = 0; i < 3; i += 1) {
        await t.http().post('/auth/verify-otp').set(EVIL).send({ email, code }).expect(403);
        await t.http().post('/auth/verify-otp').type('form').send({ email, code }).expect(415);
      }
      await t.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    } finally {
      await t.close();
    }
  });

  it.each([
    ['both', 403],
    ['body', 200],
  ] as [RefreshTokenDelivery, number][])(
    "'%s': a cross-site sign-in answers %d (cookies are set only in cookie and both modes)",
    async (delivery, status) => {
      const t = await createTestApp({ backend, platform, options: { refreshTokenDelivery: delivery } });
      try {
        const email = `${delivery}@example.com`;
        await t.http().post('/auth/request-otp').send({ email }).expect(200);
        const res = await t
          .http()
          .post('/auth/verify-otp')
          .set(EVIL)
          .send({ email, code: t.lastCode(email) });
        expect(res.status).toBe(status);
        expect(setCookies(res)).toEqual([]);
        if (status === 403) {
          await t
            .http()
            .post('/auth/verify-otp')
            .send({ email, code: t.lastCode(email) })
            .expect(200);
        }
      } finally {
        await t.close();
      }
    },
  );
});
