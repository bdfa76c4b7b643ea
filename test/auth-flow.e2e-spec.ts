import jwt from 'jsonwebtoken';
import {
  createTestApp,
  refreshCookie,
  setCookieHeader,
  signIn,
  TEST_SECRET,
  type Platform,
  type TestApp,
} from './support/test-app.js';
import { enabledBackends } from './support/databases.js';

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

describe.each(cases)('email-code login on %s / %s', (backend, platform) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ backend, platform });
  });
  afterEach(async () => {
    await t.close();
  });

  describe('POST /auth/request-otp', () => {
    it('sends one code, trims and lower-cases the address, and answers without the code', async () => {
      const res = await t.http().post('/auth/request-otp').send({ email: '  Alice@Example.COM ' }).expect(200);
      expect(res.body).toEqual({ message: expect.any(String), expires_in: 600 });
      expect(res.headers['cache-control']).toBe('no-store');
      expect(t.sent).toHaveLength(1);
      expect(t.sent[0]?.email).toBe('alice@example.com');
      expect(t.sent[0]?.code).toMatch(/^\d{6}$/);
      expect(JSON.stringify(res.body)).not.toContain(t.sent[0]!.code);
    });

    it('stores the code only as a keyed hash', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'hash@example.com' }).expect(200);
      const rows = await t.dataSource.query('SELECT * FROM otp_codes');
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(t.lastCode('hash@example.com'));
    });

    it('does not create a user before the code is verified', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'nobody@example.com' }).expect(200);
      expect(await t.store.findUserByEmail('nobody@example.com')).toBeNull();
    });

    it('answers 429 with Retry-After inside the cooldown, the same for any address', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'c@example.com' }).expect(200);
      t.clock.advance(10);
      const res = await t.http().post('/auth/request-otp').send({ email: 'c@example.com' }).expect(429);
      expect(res.headers['retry-after']).toBe('50');
      expect(res.body.message).toMatch(/wait 50 seconds/);
      expect(t.sent).toHaveLength(1);
      t.clock.advance(50);
      await t.http().post('/auth/request-otp').send({ email: 'c@example.com' }).expect(200);
      expect(t.sent).toHaveLength(2);
    });

    it.each([
      [{}, 'email'],
      [{ email: 'not-an-email' }, 'email must be a valid email address'],
      [{ email: 42 }, 'email must be a string'],
      [{ email: 'a'.repeat(250) + '@x.io' }, 'at most 254'],
    ])('rejects %j with 400 and a field message', async (body, message) => {
      const res = await t.http().post('/auth/request-otp').send(body).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
      expect(t.sent).toHaveLength(0);
    });

    it('passes a requested locale to the sender, and refuses a malformed one with 400', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'loc@example.com', locale: 'de-CH' }).expect(200);
      expect(t.sent.at(-1)).toMatchObject({ email: 'loc@example.com', locale: 'de-CH' });
      const bad = await t
        .http()
        .post('/auth/request-otp')
        .send({ email: 'loc2@example.com', locale: 'de_CH"><script>' })
        .expect(400);
      expect(JSON.stringify(bad.body)).toContain('locale must be a language tag');
      expect(t.sent.some((s) => s.email === 'loc2@example.com')).toBe(false);
    });

    it('rejects malformed JSON and non-object bodies with 400, never 500', async () => {
      await t.http().post('/auth/request-otp').set('content-type', 'application/json').send('{"email":').expect(400);
      await t.http().post('/auth/request-otp').set('content-type', 'application/json').send('[1,2]').expect(400);
      await t.http().post('/auth/request-otp').set('content-type', 'application/json').send('"x@y.io"').expect(400);
    });
  });

  describe('POST /auth/verify-otp', () => {
    it('signs in: bearer access token, refresh cookie, user created and verified, code consumed', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'bob@example.com' }).expect(200);
      const res = await t
        .http()
        .post('/auth/verify-otp')
        .send({ email: 'BOB@example.com ', code: t.lastCode('bob@example.com') })
        .expect(200);
      expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
      expect(res.headers['cache-control']).toBe('no-store');
      const cookie = setCookieHeader(res)!;
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/Secure/i);
      expect(cookie).toMatch(/SameSite=Strict/i);
      expect(cookie).toMatch(/Path=\/auth/);
      expect(cookie).toMatch(/Max-Age=604800/);
      const user = await t.store.findUserByEmail('bob@example.com');
      expect(user?.isVerified).toBe(true);
      const row = await t.store.findCode('bob@example.com', 'login');
      expect(row?.codeHash).toBeNull();
      await t
        .http()
        .post('/auth/verify-otp')
        .send({ email: 'bob@example.com', code: t.lastCode('bob@example.com') })
        .expect(401);
    });

    it('puts the registered claims and custom claims in the access token', async () => {
      const res = await signIn(t, 'claims@example.com');
      const claims = jwt.decode(res.body.access_token, { complete: true })!;
      expect(claims.header.alg).toBe('HS256');
      const p = claims.payload as Record<string, unknown>;
      const user = await t.store.findUserByEmail('claims@example.com');
      expect(p).toMatchObject({
        sub: user!.id,
        typ: 'access',
        iss: 'nestjs-otp-auth',
        aud: 'nestjs-otp-auth',
        amr: ['otp'],
        display_name: null,
      });
      expect(typeof p['sub']).toBe('string');
      expect(typeof p['sid']).toBe('string');
      expect(typeof p['jti']).toBe('string');
      expect((p['exp'] as number) - (p['iat'] as number)).toBe(3600);
      // Signed with a key derived from the secret, not the secret itself.
      expect(() => jwt.verify(res.body.access_token, TEST_SECRET)).toThrow();
    });

    it('gives the same 401 for wrong, unknown-address, never-requested and expired codes', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'known@example.com' }).expect(200);
      const right = t.lastCode('known@example.com');
      const wrong = right === '000000' ? '000001' : '000000';
      const a = await t.http().post('/auth/verify-otp').send({ email: 'known@example.com', code: wrong }).expect(401);
      const b = await t.http().post('/auth/verify-otp').send({ email: 'unknown@example.com', code: right }).expect(401);
      t.clock.advance(601);
      const c = await t.http().post('/auth/verify-otp').send({ email: 'known@example.com', code: right }).expect(401);
      expect(a.body).toEqual(b.body);
      expect(b.body).toEqual(c.body);
      expect(a.body).toEqual({ statusCode: 401, message: 'Invalid or expired code', error: 'Unauthorized' });
    });

    it('an address differing only by an accent is another account, whatever the collation (no takeover)', async () => {
      const victim = await signIn(t, 'victim@example.com');
      const victimSub = JSON.parse(Buffer.from(victim.body.access_token.split('.')[1], 'base64url').toString()).sub;
      t.clock.advance(61);
      await t.http().post('/auth/request-otp').send({ email: 'victim@example.com' }).expect(200);
      const victimCode = t.lastCode('victim@example.com');
      // The look-alike's request neither hits the victim's cooldown nor replaces the victim's code.
      await t.http().post('/auth/request-otp').send({ email: 'victim@exämple.com' }).expect(200);
      const res = await t
        .http()
        .post('/auth/verify-otp')
        .send({ email: 'victim@exämple.com', code: t.lastCode('victim@exämple.com') });
      if (res.status === 200) {
        const sub = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString()).sub;
        expect(sub).not.toBe(victimSub);
      } else {
        expect(res.status).toBe(401); // MySQL/MariaDB's unique index cannot hold both addresses
      }
      await t.http().post('/auth/verify-otp').send({ email: 'victim@example.com', code: victimCode }).expect(200);
    });

    it('accepts a code one second before it expires', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'edge@example.com' }).expect(200);
      t.clock.advance(599);
      await t
        .http()
        .post('/auth/verify-otp')
        .send({ email: 'edge@example.com', code: t.lastCode('edge@example.com') })
        .expect(200);
    });

    it('kills the code after maxAttempts wrong guesses: even the right one fails', async () => {
      await t.http().post('/auth/request-otp').send({ email: 'lock@example.com' }).expect(200);
      const right = t.lastCode('lock@example.com');
      const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
      for (let i = 0; i < 5; i++) {
        await t.http().post('/auth/verify-otp').send({ email: 'lock@example.com', code: wrong }).expect(401);
      }
      expect((await t.store.findCode('lock@example.com', 'login'))?.attempts).toBe(5);
      await t.http().post('/auth/verify-otp').send({ email: 'lock@example.com', code: right }).expect(401);
    });

    it('a new code invalidates the old one, and a new code does not reset the address-wide failure cap', async () => {
      const email = 'loop@example.com';
      for (let round = 0; round < 2; round++) {
        await t.http().post('/auth/request-otp').send({ email }).expect(200);
        const wrong = String((Number(t.lastCode(email)) + 1) % 1_000_000).padStart(6, '0');
        for (let i = 0; i < 5; i++) await t.http().post('/auth/verify-otp').send({ email, code: wrong }).expect(401);
        t.clock.advance(61);
      }
      // 10 failures within the hour: a third code cannot be used at all.
      await t.http().post('/auth/request-otp').send({ email }).expect(200);
      const third = t.lastCode(email);
      await t.http().post('/auth/request-otp').send({ email }).expect(429);
      await t.http().post('/auth/verify-otp').send({ email, code: third }).expect(401);
      // After the window the cap lifts.
      t.clock.advance(3600);
      await t.http().post('/auth/request-otp').send({ email }).expect(200);
      await t
        .http()
        .post('/auth/verify-otp')
        .send({ email, code: t.lastCode(email) })
        .expect(200);
    });

    it('the previous code stops working once a new one is sent', async () => {
      const email = 'replace@example.com';
      await t.http().post('/auth/request-otp').send({ email }).expect(200);
      const first = t.lastCode(email);
      t.clock.advance(61);
      await t.http().post('/auth/request-otp').send({ email }).expect(200);
      const second = t.lastCode(email);
      if (first !== second) await t.http().post('/auth/verify-otp').send({ email, code: first }).expect(401);
      await t.http().post('/auth/verify-otp').send({ email, code: second }).expect(200);
    });

    it.each([
      [{ email: 'x@example.com' }, 'code'],
      [{ email: 'x@example.com', code: '12ab56' }, 'code must be 4 to 10 digits'],
      [{ email: 'x@example.com', code: 123456 }, 'code must be a string'],
      [{ code: '123456' }, 'email'],
    ])('rejects %j with 400', async (body, message) => {
      const res = await t.http().post('/auth/verify-otp').send(body).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    });
  });

  describe('refresh, logout and guards', () => {
    it('runs the whole flow: sign in, use, refresh (new tokens), logout, then refresh and the access token fail', async () => {
      const login = await signIn(t, 'flow@example.com');
      const access = login.body.access_token as string;
      const refresh = refreshCookie(login)!;
      await t.http().get('/protected').set('authorization', `Bearer ${access}`).expect(200);
      const verified = await t.http().get('/verified-only').set('authorization', `Bearer ${access}`).expect(200);
      expect(verified.body.email).toBe('flow@example.com');
      await t.http().get('/passport').set('authorization', `Bearer ${access}`).expect(200);

      const refreshed = await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${refresh}`).expect(200);
      expect(refreshed.body.access_token).not.toBe(access);
      const next = refreshCookie(refreshed)!;
      expect(next).not.toBe(refresh);

      const out = await t
        .http()
        .post('/auth/logout')
        .set('cookie', `otp_refresh=${next}`)
        .set('authorization', `Bearer ${refreshed.body.access_token}`)
        .expect(200);
      const cleared = setCookieHeader(out)!;
      expect(cleared).toMatch(/otp_refresh=;/);
      expect(cleared).toMatch(/Path=\/auth/);
      expect(cleared).toMatch(/HttpOnly/i);
      expect(cleared).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/);
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${next}`).expect(401);
      for (const token of [access, refreshed.body.access_token as string]) {
        await t.http().get('/protected').set('authorization', `Bearer ${token}`).expect(401);
        await t.http().get('/passport').set('authorization', `Bearer ${token}`).expect(401);
      }
    });

    it('refuses the refresh cookie on cross-site requests (CSRF), and accepts same-site ones', async () => {
      const login = await signIn(t, 'csrf@example.com');
      const cookie = `otp_refresh=${refreshCookie(login)!}`;
      const host = new URL(await t.app.getUrl().catch(() => 'http://127.0.0.1')).host;
      for (const headers of [
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { origin: `http://${host}.evil.example` },
      ]) {
        const res = await t.http().post('/auth/refresh').set('cookie', cookie).set(headers).expect(403);
        expect(res.body.message).toContain('Cross-site');
        await t.http().post('/auth/logout').set('cookie', cookie).set(headers).expect(403);
      }
      const sameSite = await t.http().post('/auth/refresh').set('cookie', cookie);
      expect(sameSite.status).toBe(200); // no Origin: not a browser's cross-site request
      const fromPage = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(sameSite)!}`)
        .set('sec-fetch-site', 'same-origin')
        .expect(200);
      expect(refreshCookie(fromPage)).toEqual(expect.any(String));
    });

    it('cookie.allowedOrigins admits listed origins, even from another site, and nothing else', async () => {
      await t.close();
      t = await createTestApp({
        backend,
        platform,
        options: {
          cookie: { secure: true, name: 'otp_refresh', sameSite: 'none', allowedOrigins: ['https://app.example'] },
        },
      });
      const login = await signIn(t, 'listed@example.com');
      const listed = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(login)!}`)
        .set({ origin: 'https://app.example', 'sec-fetch-site': 'cross-site' })
        .expect(200);
      for (const origin of ['https://evil.example', 'https://app.example.evil', 'http://app.example']) {
        await t
          .http()
          .post('/auth/refresh')
          .set('cookie', `otp_refresh=${refreshCookie(listed)!}`)
          .set({ origin, 'sec-fetch-site': 'cross-site' })
          .expect(403);
      }
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(listed)!}`)
        .set({ 'sec-fetch-site': 'cross-site' })
        .expect(403);
    });

    it('logout is idempotent and answers 200 without or with invalid tokens', async () => {
      await t.http().post('/auth/logout').expect(200);
      await t
        .http()
        .post('/auth/logout')
        .set('cookie', 'otp_refresh=garbage')
        .set('authorization', 'Bearer nope')
        .expect(200);
      const login = await signIn(t, 'twice@example.com');
      const cookie = `otp_refresh=${refreshCookie(login)}`;
      await t.http().post('/auth/logout').set('cookie', cookie).expect(200);
      await t.http().post('/auth/logout').set('cookie', cookie).expect(200);
    });

    it('refuses missing, invalid and access-token-as-refresh tokens with 401', async () => {
      const login = await signIn(t, 'bad@example.com');
      await t.http().post('/auth/refresh').expect(401);
      await t.http().post('/auth/refresh').set('cookie', 'otp_refresh=not-a-token').expect(401);
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${login.body.access_token}`).expect(401);
    });

    it('refuses a refresh token after it expires', async () => {
      const login = await signIn(t, 'old@example.com');
      t.clock.advance(7 * 24 * 3600 + 1);
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(login)}`)
        .expect(401);
    });

    it('detects reuse of a rotated refresh token after the grace period and revokes the whole family', async () => {
      const login = await signIn(t, 'theft@example.com');
      const original = refreshCookie(login)!;
      const rotated = await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${original}`).expect(200);
      const current = refreshCookie(rotated)!;
      t.clock.advance(6);
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${original}`).expect(401);
      // The thief's replay killed the legitimate chain and its access tokens too.
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${current}`).expect(401);
      await t.http().get('/protected').set('authorization', `Bearer ${rotated.body.access_token}`).expect(401);
    });

    it('inside the grace period a repeated refresh gets the same successor (one live chain)', async () => {
      const login = await signIn(t, 'tabs@example.com');
      const original = refreshCookie(login)!;
      const a = await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${original}`).expect(200);
      t.clock.advance(2);
      const b = await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${original}`).expect(200);
      expect(refreshCookie(b)).toBe(refreshCookie(a));
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(a)}`)
        .expect(200);
    });

    it('logout-all revokes every session of the user', async () => {
      const one = await signIn(t, 'many@example.com');
      t.clock.advance(61);
      const two = await signIn(t, 'many@example.com');
      await t.http().post('/auth/logout-all').expect(401);
      const res = await t
        .http()
        .post('/auth/logout-all')
        .set('authorization', `Bearer ${one.body.access_token}`)
        .expect(200);
      expect(res.body.revoked_sessions).toBe(2);
      await t.http().get('/protected').set('authorization', `Bearer ${two.body.access_token}`).expect(401);
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(two)}`)
        .expect(401);
    });

    it('guards refuse missing, malformed, tampered, expired and foreign tokens with 401', async () => {
      const login = await signIn(t, 'guard@example.com');
      const access = login.body.access_token as string;
      const [h, p, s] = access.split('.');
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: '999' })).toString('base64url')}.${s}`;
      const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`;
      const foreign = jwt.sign({ ...payload }, 'some-other-secret-some-other-secret');
      for (const header of [
        undefined,
        'Bearer',
        'Basic abc',
        `Bearer ${tampered}`,
        `Bearer ${none}`,
        `Bearer ${foreign}`,
        'Bearer a.b.c',
      ]) {
        const req = t.http().get('/protected');
        if (header) req.set('authorization', header);
        const res = await req.expect(401);
        expect(res.body.message).toBe('Invalid or expired access token');
      }
      await t.http().get(`/protected?access_token=${access}`).expect(401);
      // Accepted just before expiry (and so remembered as verified), refused from its exp on.
      t.clock.advance(3599);
      await t.http().get('/protected').set('authorization', `Bearer ${access}`).expect(200);
      t.clock.advance(1);
      await t.http().get('/protected').set('authorization', `Bearer ${access}`).expect(401);
    });

    it('@Claims() returns only the custom claims', async () => {
      const login = await signIn(t, 'custom@example.com');
      const res = await t.http().get('/claims').set('authorization', `Bearer ${login.body.access_token}`).expect(200);
      expect(res.body).toEqual({ display_name: null });
    });

    it('VerifiedUserGuard refuses a token whose user no longer exists or is unverified', async () => {
      const login = await signIn(t, 'gone@example.com');
      const auth = `Bearer ${login.body.access_token}`;
      await t.dataSource.query(`UPDATE users SET is_verified = ${backend === 'postgres' ? 'false' : '0'}`);
      await t.http().get('/verified-only').set('authorization', auth).expect(401);
      await t.http().get('/protected').set('authorization', auth).expect(200);
      await t.dataSource.query('DELETE FROM users');
      await t.http().get('/verified-only').set('authorization', auth).expect(401);
    });
  });
});
