import jwt from 'jsonwebtoken';
import { AccessTokenService, OtpAuthService, SessionService } from 'nestjs-otp-auth';
import { recordSecret } from './support/log-capture.js';
import { enabledBackends } from './support/databases.js';
import { FIXTURE_PASSWORD } from './support/probe.controller.js';
import { createTestApp, refreshCookie, signIn, TEST_SECRET, type Platform, type TestApp } from './support/test-app.js';
import { claimsOf, codeAt, decodeQr, enroll, firstFactor } from './support/totp-helpers.js';

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

describe.each(cases)('TOTP two-factor on %s / %s', (backend, platform) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ backend, platform });
  });
  afterEach(async () => {
    await t.close();
  });

  describe('enrolment', () => {
    it('returns a 160-bit secret, an exact key URI and a QR code of it; confirms with a code', async () => {
      const login = await signIn(t, 'ada.lovelace@example.com');
      const auth = `Bearer ${login.body.access_token as string}`;
      const setup = await t.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
      expect(setup.headers['cache-control']).toBe('no-store');
      const {
        secret,
        otpauth_url: url,
        qr_code: qr,
      } = setup.body as { secret: string; otpauth_url: string; qr_code: string };
      expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 32 base32 characters = 160 bits, no padding
      expect(url).toBe(
        `otpauth://totp/nestjs-otp-auth:ada.lovelace%40example.com?secret=${secret}&issuer=nestjs-otp-auth`,
      );
      expect(qr).toMatch(/^data:image\/png;base64,/);
      const png = await t
        .http()
        .get('/auth/totp/qr')
        .set('authorization', auth)
        .buffer(true)
        .parse((res, done) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => done(null, Buffer.concat(chunks)));
        });
      expect(png.status).toBe(200);
      expect(png.headers['content-type']).toBe('image/png');
      expect(decodeQr(png.body as Buffer)).toBe(url);

      await t
        .http()
        .post('/auth/totp/confirm')
        .set('authorization', auth)
        .send({ code: codeAt(t, secret, 5) })
        .expect(401);
      const confirmed = await t
        .http()
        .post('/auth/totp/confirm')
        .set('authorization', auth)
        .send({ code: codeAt(t, secret) })
        .expect(200);
      expect(confirmed.body.backup_codes).toHaveLength(10);
      expect(new Set(confirmed.body.backup_codes).size).toBe(10);
      for (const code of confirmed.body.backup_codes as string[]) expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
      expect(claimsOf(confirmed.body.access_token).amr).toEqual(['otp', 'totp']);
      // The enrolling session had no second factor: it is over.
      await t.http().get('/protected').set('authorization', auth).expect(401);
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(login)}`)
        .expect(401);
      await t.http().get('/protected').set('authorization', `Bearer ${confirmed.body.access_token}`).expect(200);

      // The secret is encrypted at rest and never shown again; backup codes are only hashes.
      const rows = JSON.stringify(await t.dataSource.query('SELECT * FROM otp_totp'));
      expect(rows).not.toContain(secret);
      const codes = JSON.stringify(await t.dataSource.query('SELECT * FROM otp_backup_codes'));
      for (const code of confirmed.body.backup_codes as string[]) {
        expect(codes).not.toContain(code);
        expect(codes).not.toContain(code.replace('-', ''));
      }
      const again = `Bearer ${confirmed.body.access_token}`;
      await t.http().post('/auth/totp/setup').set('authorization', again).expect(409);
      await t.http().get('/auth/totp/qr').set('authorization', again).expect(404);
    });

    it('needs a sign-in from the last 15 minutes: a stolen or refreshed token cannot enrol (RFC 9470 answer)', async () => {
      const login = await signIn(t, 'stale@example.com');
      expect(claimsOf(login.body.access_token as string).auth_time).toBe(Math.floor(t.clock.now() / 1000));
      const auth = `Bearer ${login.body.access_token as string}`;
      await t.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
      t.clock.advance(15 * 60); // exactly the limit: still fine (a new pending enrolment replaces the first)
      const setup = await t.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
      const secret = setup.body.secret as string;

      t.clock.advance(1);
      // Refreshing keeps the sign-in time: the new access token is no fresher for enrolment.
      const refreshed = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(login)}`)
        .expect(200);
      expect(claimsOf(refreshed.body.access_token as string).auth_time).toBe(
        claimsOf(login.body.access_token as string).auth_time,
      );
      const stale = `Bearer ${refreshed.body.access_token as string}`;
      for (const call of [
        t.http().post('/auth/totp/setup').set('authorization', stale),
        t.http().get('/auth/totp/qr').set('authorization', stale),
        t
          .http()
          .post('/auth/totp/confirm')
          .set('authorization', stale)
          .send({ code: codeAt(t, secret) }),
      ]) {
        const res = await call;
        expect(res.status).toBe(401);
        expect(res.body).toEqual({
          statusCode: 401,
          error: 'insufficient_user_authentication',
          message: 'Sign in again: this needs a sign-in from the last 15 minutes.',
        });
        expect(res.headers['www-authenticate']).toBe(
          'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=900',
        );
      }
      // Nothing was enrolled, and the stale token still works where freshness does not matter.
      await t.http().get('/protected').set('authorization', stale).expect(200);
      expect((await t.store.findTotp(claimsOf(login.body.access_token as string).sub as string))?.active).toBe(false);

      // A new sign-in may enrol.
      t.clock.advance(61);
      const fresh = `Bearer ${(await signIn(t, 'stale@example.com')).body.access_token as string}`;
      const again = await t.http().post('/auth/totp/setup').set('authorization', fresh).expect(200);
      await t
        .http()
        .post('/auth/totp/confirm')
        .set('authorization', fresh)
        .send({ code: codeAt(t, again.body.secret as string) })
        .expect(200);
    });

    it('a token without auth_time (issued before the claim existed) counts as an old sign-in', async () => {
      const login = await signIn(t, 'legacy@example.com');
      const { auth_time: _dropped, ...legacy } = claimsOf(login.body.access_token as string);
      const token = jwt.sign(legacy, t.app.get(AccessTokenService).key, { algorithm: 'HS256' });
      recordSecret(token);
      await t.http().get('/protected').set('authorization', `Bearer ${token}`).expect(200);
      const res = await t.http().post('/auth/totp/setup').set('authorization', `Bearer ${token}`).expect(401);
      expect(res.body.error).toBe('insufficient_user_authentication');
      // A non-number auth_time is no valid token at all.
      const odd = jwt.sign({ ...legacy, auth_time: 'now' }, t.app.get(AccessTokenService).key, { algorithm: 'HS256' });
      recordSecret(odd);
      await t.http().get('/protected').set('authorization', `Bearer ${odd}`).expect(401);
    });

    it("@RequireRecentSignIn(60) guards an application's own route with its own window", async () => {
      await t.http().post('/sensitive').expect(401);
      const login = await signIn(t, 'sensitive@example.com');
      const auth = `Bearer ${login.body.access_token as string}`;
      await t.http().post('/sensitive').set('authorization', auth).expect(200);
      t.clock.advance(61);
      const res = await t.http().post('/sensitive').set('authorization', auth).expect(401);
      expect(res.body.message).toBe('Sign in again: this needs a sign-in from the last minute.');
      expect(res.headers['www-authenticate']).toContain('max_age=60');
      // Under a controller-level VerifiedUserGuard, the step-up guard keeps the loaded user.
      const fresh = `Bearer ${(await signIn(t, 'sensitive@example.com')).body.access_token as string}`;
      const deleted = await t.http().post('/account/delete').set('authorization', fresh).expect(200);
      expect(deleted.body).toEqual({ deleted: 'sensitive@example.com' });
      // Enrolment keeps its own 15-minute window.
      await t.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
    });

    it('enrollmentMaxAuthAge: false lets any valid session enrol', async () => {
      await t.close();
      t = await createTestApp({ backend, platform, options: { totp: { enrollmentMaxAuthAge: false } } });
      const login = await signIn(t, 'anytime@example.com');
      t.clock.advance(24 * 3600);
      const refreshed = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(login)}`)
        .expect(200);
      await t
        .http()
        .post('/auth/totp/setup')
        .set('authorization', `Bearer ${refreshed.body.access_token as string}`)
        .expect(200);
      // The app's own step-up routes keep their window: the TOTP setting does not reach them.
      await t
        .http()
        .post('/sensitive')
        .set('authorization', `Bearer ${refreshed.body.access_token as string}`)
        .expect(401);
    });

    it('requires a signed-in user and a pending enrolment', async () => {
      await t.http().post('/auth/totp/setup').expect(401);
      const login = await signIn(t, 'nopending@example.com');
      const auth = `Bearer ${login.body.access_token as string}`;
      await t.http().get('/auth/totp/qr').set('authorization', auth).expect(404);
      await t.http().post('/auth/totp/confirm').set('authorization', auth).send({ code: '123456' }).expect(400);
      await t.http().post('/auth/totp/confirm').set('authorization', auth).send({ code: 'abc' }).expect(400);
    });
  });

  describe('sign-in with a second factor', () => {
    it('verify-otp returns only an mfa_token; totp/verify issues the session', async () => {
      const { secret } = await enroll(t, 'two@example.com');
      t.clock.advance(61);
      await t.http().post('/auth/request-otp').send({ email: 'two@example.com' }).expect(200);
      const first = await t
        .http()
        .post('/auth/verify-otp')
        .send({ email: 'two@example.com', code: t.lastCode('two@example.com') })
        .expect(200);
      expect(Object.keys(first.body).sort()).toEqual(['expires_in', 'mfa_required', 'mfa_token']);
      expect(first.headers['set-cookie']).toBeUndefined();
      const mfaToken = first.body.mfa_token as string;
      // The mfa_token is accepted nowhere else.
      await t.http().get('/protected').set('authorization', `Bearer ${mfaToken}`).expect(401);
      await t.http().get('/passport').set('authorization', `Bearer ${mfaToken}`).expect(401);
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${mfaToken}`).expect(401);
      await t.http().post('/auth/totp/setup').set('authorization', `Bearer ${mfaToken}`).expect(401);

      t.clock.advance(30);
      const done = await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: mfaToken, code: codeAt(t, secret) })
        .expect(200);
      expect(claimsOf(done.body.access_token)).toMatchObject({ amr: ['otp', 'totp'], typ: 'access' });
      expect(refreshCookie(done)).toBeDefined();
      // Single use.
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: mfaToken, code: codeAt(t, secret, 1) })
        .expect(401);
      // Access and refresh tokens are no mfa_tokens.
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: done.body.access_token, code: codeAt(t, secret, 1) })
        .expect(401);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: refreshCookie(done), code: codeAt(t, secret, 1) })
        .expect(401);
      // The refreshed session keeps its second factor.
      const refreshed = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(done)}`)
        .expect(200);
      expect(claimsOf(refreshed.body.access_token).amr).toEqual(['otp', 'totp']);
    });

    it('accepts the current step ±1 only, by server time, and never the same step twice', async () => {
      const { secret } = await enroll(t, 'window@example.com');
      t.clock.advance(300);
      const verify = async (steps: number) =>
        t
          .http()
          .post('/auth/totp/verify')
          .send({ mfa_token: await firstFactor(t, 'window@example.com'), code: codeAt(t, secret, steps) });
      // firstFactor moves the clock 61 s; codes are computed after it, at the new time.
      expect((await verify(-1)).status).toBe(200);
      expect((await verify(2)).status).toBe(401); // outside the window
      expect((await verify(-3)).status).toBe(401); // outside the window
      const now = await firstFactor(t, 'window@example.com');
      const code = codeAt(t, secret, 1);
      await t.http().post('/auth/totp/verify').send({ mfa_token: now, code }).expect(200);
      // The same code again, even on another challenge: a replay.
      const other = await (async () => {
        await t.http().post('/auth/logout').expect(200);
        t.clock.advance(61);
        await t.http().post('/auth/request-otp').send({ email: 'window@example.com' }).expect(200);
        const r = await t
          .http()
          .post('/auth/verify-otp')
          .send({ email: 'window@example.com', code: t.lastCode('window@example.com') });
        return r.body.mfa_token as string;
      })();
      t.clock.advance(-61); // back, so the replayed code is inside the window again
      await t.http().post('/auth/totp/verify').send({ mfa_token: other, code }).expect(401);
    });

    it('limits guesses per mfa_token and per user across challenges', async () => {
      const { secret } = await enroll(t, 'guess@example.com');
      const wrong = () => String((Number(codeAt(t, secret)) + 1) % 1_000_000).padStart(6, '0');
      const first = await firstFactor(t, 'guess@example.com');
      for (let i = 0; i < 5; i++)
        await t.http().post('/auth/totp/verify').send({ mfa_token: first, code: wrong() }).expect(401);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: first, code: codeAt(t, secret) })
        .expect(401);
      // A new login session does not bring 5 fresh guesses beyond the user-wide cap (10).
      const second = await firstFactor(t, 'guess@example.com');
      for (let i = 0; i < 5; i++)
        await t.http().post('/auth/totp/verify').send({ mfa_token: second, code: wrong() }).expect(401);
      const third = await firstFactor(t, 'guess@example.com');
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: third, code: codeAt(t, secret) })
        .expect(401);
      t.clock.advance(900);
      const fourth = await firstFactor(t, 'guess@example.com');
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: fourth, code: codeAt(t, secret) })
        .expect(200);
    });

    it('backup codes work once each, and sign in with amr backup', async () => {
      const { backupCodes } = await enroll(t, 'backup@example.com');
      const code = backupCodes[0]!;
      const done = await t
        .http()
        .post('/auth/totp/verify')
        .send({
          mfa_token: await firstFactor(t, 'backup@example.com'),
          backup_code: code.toLowerCase().replace('-', ' '),
        })
        .expect(200);
      expect(claimsOf(done.body.access_token).amr).toEqual(['otp', 'backup']);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, 'backup@example.com'), backup_code: code })
        .expect(401);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, 'backup@example.com') })
        .expect(400);
      await t.http().post('/auth/totp/verify').send({ mfa_token: 'x', code: '123456', backup_code: code }).expect(400);
    });

    it('24 parallel submissions of one TOTP code, and of one backup code, each give exactly one session', async () => {
      const { secret, backupCodes } = await enroll(t, 'par@example.com');
      const user = (await t.store.findUserByEmail('par@example.com'))!;
      const service = t.app.get(OtpAuthService);
      const challenges = async (n: number) =>
        Promise.all(
          Array.from({ length: n }, async () => {
            const r = await service.signInWithFirstFactor(user, ['otp']);
            if (!('mfaToken' in r)) throw new Error('expected a challenge');
            return r.mfaToken;
          }),
        );
      t.clock.advance(30);
      const code = codeAt(t, secret);
      const totpResults = await Promise.all(
        (await challenges(24)).map((m) => t.http().post('/auth/totp/verify').send({ mfa_token: m, code })),
      );
      expect(totpResults.filter((r) => r.status === 200)).toHaveLength(1);
      t.clock.advance(900); // the 23 replays count against the user-wide cap; let that window pass
      const backupResults = await Promise.all(
        (await challenges(24)).map((m) =>
          t.http().post('/auth/totp/verify').send({ mfa_token: m, backup_code: backupCodes[1] }),
        ),
      );
      expect(backupResults.filter((r) => r.status === 200)).toHaveLength(1);
    });
  });

  describe('managing two-factor', () => {
    it('regenerating backup codes kills the old set; disabling needs a code and turns 2FA off', async () => {
      const { secret, backupCodes, confirmed } = await enroll(t, 'manage@example.com');
      const auth = `Bearer ${confirmed.body.access_token as string}`;
      await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', auth)
        .send({ code: '000000' === codeAt(t, secret) ? '111111' : '000000' })
        .expect(401);
      await t.http().post('/auth/totp/backup-codes').set('authorization', auth).send({}).expect(400);
      const fresh = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', auth)
        .send({ backup_code: backupCodes[0] })
        .expect(200);
      expect(fresh.body.backup_codes).toHaveLength(10);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, 'manage@example.com'), backup_code: backupCodes[1] })
        .expect(401);
      t.clock.advance(30);
      await t
        .http()
        .post('/auth/totp/disable')
        .set('authorization', auth)
        .send({ code: codeAt(t, secret) })
        .expect(200);
      t.clock.advance(61);
      await t.http().post('/auth/request-otp').send({ email: 'manage@example.com' }).expect(200);
      const plain = await t
        .http()
        .post('/auth/verify-otp')
        .send({ email: 'manage@example.com', code: t.lastCode('manage@example.com') })
        .expect(200);
      expect(plain.body.access_token).toEqual(expect.any(String));
      await t
        .http()
        .post('/auth/totp/disable')
        .set('authorization', auth)
        .send({ code: codeAt(t, secret) })
        .expect(400);
    });
  });

  describe('no bypass', () => {
    it('an app with its own first factor goes through the same TOTP step', async () => {
      const { secret } = await enroll(t, 'pwd@example.com');
      await t.http().post('/password-login').send({ email: 'pwd@example.com', password: 'nope' }).expect(401);
      const first = await t
        .http()
        .post('/password-login')
        .send({ email: 'pwd@example.com', password: FIXTURE_PASSWORD })
        .expect(200);
      expect(first.body).toEqual({ mfa_required: true, mfa_token: expect.any(String) });
      t.clock.advance(30);
      const done = await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: first.body.mfa_token, code: codeAt(t, secret) })
        .expect(200);
      expect(claimsOf(done.body.access_token).amr).toEqual(['pwd', 'totp']);
      // A user without TOTP gets a session straight away.
      await signIn(t, 'plain@example.com');
      const plain = await t
        .http()
        .post('/password-login')
        .send({ email: 'plain@example.com', password: FIXTURE_PASSWORD })
        .expect(200);
      expect(claimsOf(plain.body.access_token).amr).toEqual(['pwd']);
    });

    it('the programmatic API cannot open a one-factor session for a TOTP user, nor claim a second factor', async () => {
      await enroll(t, 'api@example.com');
      const user = (await t.store.findUserByEmail('api@example.com'))!;
      await expect(t.app.get(SessionService).issue(user, ['pwd'])).rejects.toThrow(
        'Two-factor authentication required',
      );
      const auth = t.app.get(OtpAuthService);
      for (const amr of [['totp'], ['backup'], ['pwd,totp'], ['']]) {
        await expect(auth.signInWithFirstFactor(user, amr)).rejects.toThrow(TypeError);
      }
      const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_sessions WHERE revoked_at IS NULL');
      expect(Number(n)).toBe(1); // only the session confirm opened
    });

    it('an older one-factor session dies when 2FA is turned on, including its refresh token', async () => {
      const other = await signIn(t, 'old@example.com');
      t.clock.advance(61);
      await enroll(t, 'old@example.com');
      await t.http().get('/protected').set('authorization', `Bearer ${other.body.access_token}`).expect(401);
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(other)}`)
        .expect(401);
    });

    it('@RequireMfa() refuses one-factor sessions with 403 and admits two-factor ones', async () => {
      const plain = await signIn(t, 'req@example.com');
      await t.http().get('/mfa-only').expect(401);
      const res = await t.http().get('/mfa-only').set('authorization', `Bearer ${plain.body.access_token}`).expect(403);
      expect(res.body.message).toBe('Two-factor authentication required');
      t.clock.advance(61);
      const { confirmed } = await enroll(t, 'req@example.com');
      await t.http().get('/mfa-only').set('authorization', `Bearer ${confirmed.body.access_token}`).expect(200);
    });
  });
});

describe.each(enabledBackends())('TOTP required by the app on %s', (backend) => {
  it('VerifiedUserGuard answers 403 to one-factor sessions of users who must have 2FA', async () => {
    const t = await createTestApp({
      backend,
      options: { totp: { required: (user) => (user as { email: string }).email.endsWith('@admin.example') } },
    });
    try {
      const admin = await signIn(t, 'root@admin.example');
      await t.http().get('/verified-only').set('authorization', `Bearer ${admin.body.access_token}`).expect(403);
      const user = await signIn(t, 'user@example.com');
      await t.http().get('/verified-only').set('authorization', `Bearer ${user.body.access_token}`).expect(200);
      t.clock.advance(61);
      const { confirmed } = await enroll(t, 'root@admin.example');
      await t.http().get('/verified-only').set('authorization', `Bearer ${confirmed.body.access_token}`).expect(200);
    } finally {
      await t.close();
    }
  });
});

describe.each(enabledBackends())('rotating the module secret on %s', (backend) => {
  it('enrolments and backup codes made under the old secret keep working via previousSecrets', async () => {
    const before = await createTestApp({ backend });
    const { secret, backupCodes } = await enroll(before, 'rotate@example.com');
    await before.app.close();
    const after = await createTestApp({
      backend,
      database: before.database,
      options: { secret: 'rotated-secret-0123456789abcdef0123456789', previousSecrets: [TEST_SECRET] },
    });
    try {
      after.clock.advance(60);
      const viaCode = await firstFactor(after, 'rotate@example.com');
      await after
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: viaCode, code: codeAt(after, secret) })
        .expect(200);
      const viaBackup = await firstFactor(after, 'rotate@example.com');
      await after
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: viaBackup, backup_code: backupCodes[0] })
        .expect(200);
    } finally {
      await after.close();
      await before.database.drop();
    }
  });
});
