import { AUTH_CLAIMS_HEADER, AUTH_USER_HEADER } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, type Platform, type TestApp } from './support/test-app.js';
import { enroll } from './support/totp-helpers.js';

const API_KEY = 'introspection-key-0123456789abcdef0123';
const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

describe.each(cases)('token endpoints on %s / %s', (backend, platform) => {
  let t: TestApp;

  beforeEach(async () => {
    t = await createTestApp({
      backend,
      platform,
      options: {
        tokenEndpoints: { introspectionApiKeys: [API_KEY] },
        getAdditionalClaims: () => ({ role: 'editor', note: 'line1\nline2 ✓' }),
      },
    });
  });
  afterEach(async () => {
    await t.close();
  });

  const introspect = (token: string, key: string | null = API_KEY) => {
    const req = t.http().post('/auth/introspect');
    if (key !== null) req.set('authorization', `Bearer ${key}`);
    return req.send({ token });
  };

  describe('POST /introspect (RFC 7662)', () => {
    it('returns the claims of a live access token, and {active: false} once the session ends', async () => {
      const signedIn = await signIn(t, 'intro@example.com');
      const token = signedIn.body.access_token as string;
      const live = await introspect(token).expect(200);
      expect(live.headers['cache-control']).toBe('no-store');
      expect(live.body).toMatchObject({
        active: true,
        token_type: 'access_token',
        sub: expect.any(String),
        sid: expect.any(String),
        jti: expect.any(String),
        iss: 'nestjs-otp-auth',
        aud: 'nestjs-otp-auth',
        amr: ['otp'],
        role: 'editor',
      });
      expect(live.body.exp - live.body.iat).toBe(3600);

      await t.http().post('/auth/logout').set('authorization', `Bearer ${token}`).expect(200);
      expect((await introspect(token).expect(200)).body).toEqual({ active: false });
    });

    it('accepts the form-encoded body of RFC 7662 §2.1', async () => {
      const token = (await signIn(t, 'form@example.com')).body.access_token as string;
      const res = await t
        .http()
        .post('/auth/introspect')
        .set('authorization', `Bearer ${API_KEY}`)
        .type('form')
        .send({ token, token_type_hint: 'access_token' })
        .expect(200);
      expect(res.body.active).toBe(true);
    });

    it.each([
      ['garbage', 'not-a-jwt'],
      ['an empty string', ''],
      ['a refresh token', 'REFRESH'],
      ['an mfa_token', 'MFA'],
      ['an expired token', 'EXPIRED'],
    ])('answers {active: false} for %s', async (_label, kind) => {
      let token = kind;
      if (kind === 'REFRESH' || kind === 'EXPIRED') {
        const res = await signIn(t, `${kind.toLowerCase()}@example.com`);
        token = kind === 'REFRESH' ? refreshCookie(res)! : (res.body.access_token as string);
        if (kind === 'EXPIRED') t.clock.advance(3601);
      }
      if (kind === 'MFA') {
        await enroll(t, 'mfa@example.com');
        t.clock.advance(61);
        await t.http().post('/auth/request-otp').send({ email: 'mfa@example.com' }).expect(200);
        const challenge = await t
          .http()
          .post('/auth/verify-otp')
          .send({ email: 'mfa@example.com', code: t.lastCode('mfa@example.com') })
          .expect(200);
        token = challenge.body.mfa_token as string;
      }
      expect((await introspect(token).expect(200)).body).toEqual({ active: false });
    });

    it('requires the API key: missing or wrong keys get 401 with WWW-Authenticate, and no claims', async () => {
      const token = (await signIn(t, 'key@example.com')).body.access_token as string;
      for (const key of [null, 'wrong-key-0123456789abcdef0123456789', token, `${API_KEY}x`]) {
        const res = await introspect(token, key).expect(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(JSON.stringify(res.body)).not.toContain('key@example.com');
        expect(res.body.sub).toBeUndefined();
      }
    });

    it('answers 400 with a message for a body without a token', async () => {
      const res = await t
        .http()
        .post('/auth/introspect')
        .set('authorization', `Bearer ${API_KEY}`)
        .send({ tokn: 'x' })
        .expect(400);
      expect(JSON.stringify(res.body)).toContain('token must be a string');
    });
  });

  describe('GET /verify (nginx auth_request)', () => {
    it('answers 200 with the user and claims in headers, then 401 after logout', async () => {
      const token = (await signIn(t, 'gate@example.com')).body.access_token as string;
      const res = await t.http().get('/auth/verify').set('authorization', `Bearer ${token}`).expect(200);
      const claims = JSON.parse(Buffer.from(res.headers[AUTH_CLAIMS_HEADER] as string, 'base64url').toString());
      expect(res.headers[AUTH_USER_HEADER]).toBe(claims.sub);
      expect(claims).toMatchObject({ typ: 'access', amr: ['otp'], role: 'editor', note: 'line1\nline2 ✓' });

      await t.http().post('/auth/logout').set('authorization', `Bearer ${token}`).expect(200);
      const refused = await t.http().get('/auth/verify').set('authorization', `Bearer ${token}`).expect(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer');
      expect(refused.headers[AUTH_USER_HEADER]).toBeUndefined();
    });

    it.each([undefined, 'Bearer', 'Bearer nope', 'Basic dXNlcjpwYXNz'])(
      'answers 401, never 500, for Authorization: %s',
      async (header) => {
        const req = t.http().get('/auth/verify');
        if (header !== undefined) req.set('authorization', header);
        await req.expect(401);
      },
    );
  });
});

describe.each(enabledBackends())('token endpoints switched off on %s', (backend) => {
  it('introspection answers 404 without API keys; /verify answers 404 when disabled', async () => {
    const t = await createTestApp({ backend, options: { tokenEndpoints: { verify: false } } });
    try {
      const token = (await signIn(t, 'off@example.com')).body.access_token as string;
      const res = await t.http().post('/auth/introspect').set('authorization', `Bearer ${token}`).send({ token });
      expect(res.status).toBe(404);
      expect(res.body.message).toContain('introspectionApiKeys');
      await t.http().get('/auth/verify').set('authorization', `Bearer ${token}`).expect(404);
    } finally {
      await t.close();
    }
  });
});
