// Managing an active authenticator over HTTP (issue 13, item 9): `totp/disable` and
// `totp/backup-codes` need a recent sign-in, can end the user's other sessions, and backup codes
// are stored with scrypt (one salt per set), while sets stored in the earlier format keep working.
import { createHash, createHmac, hkdfSync, randomBytes, randomUUID, scryptSync } from 'node:crypto';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type request from 'supertest';
import { BackupCodeHasher, newBackupCode, normalizeBackupCode, type TimedOtpAuthEvent } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { recordSecret } from './support/log-capture.js';
import { createTestApp, refreshCookie, signIn, TEST_SECRET, type Platform, type TestApp } from './support/test-app.js';
import { claimsOf, codeAt, enroll, firstFactor } from './support/totp-helpers.js';

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

const STEP_UP = {
  statusCode: 401,
  error: 'insufficient_user_authentication',
  message: 'Sign in again: this needs a sign-in from the last 15 minutes.',
};
const STEP_UP_HEADER =
  'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=900';

/** The stored form of a backup code, computed here independently of the module. */
function scryptHash(code: string, salt: string, secret = TEST_SECRET): string {
  const key = Buffer.from(hkdfSync('sha256', secret, 'nestjs-otp-auth/v1', 'backup-code-hash', 32));
  const keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
  const scrypted = scryptSync(normalizeBackupCode(code), salt, 32, { N: 2 ** 14, r: 8, p: 1 });
  return `s1.${keyId}.${createHmac('sha256', key).update('backup-code-scrypt-v1\0').update(scrypted).digest('base64url')}`;
}

describe.each(cases)('managing two-factor on %s / %s', (backend, platform) => {
  let t: TestApp;
  let events: TimedOtpAuthEvent[];
  beforeEach(async () => {
    events = [];
    t = await createTestApp({ backend, platform, options: { onEvent: (event) => void events.push(event) } });
  });
  afterEach(async () => {
    await t.close();
  });

  const bearer = (res: request.Response) => `Bearer ${res.body.access_token as string}`;
  const userIdOf = (res: request.Response) => claimsOf(res.body.access_token as string).sub as string;

  /** Both factors over HTTP (moves the clock 61 s, so each call uses a new TOTP step). */
  async function twoFactorSignIn(email: string, secret: string): Promise<request.Response> {
    const mfaToken = await firstFactor(t, email);
    return t
      .http()
      .post('/auth/totp/verify')
      .send({ mfa_token: mfaToken, code: codeAt(t, secret) })
      .expect(200);
  }

  describe('recent sign-in', () => {
    it('a stale or refreshed session gets the step-up 401 from disable and backup-codes, and nothing changes', async () => {
      const email = 'stale-manage@example.com';
      const { secret, backupCodes, confirmed } = await enroll(t, email);
      const userId = userIdOf(confirmed);
      const other = await twoFactorSignIn(email, secret);
      t.clock.advance(15 * 60 + 1);
      // Refreshing keeps the sign-in time, so the new access token is just as stale.
      const refreshed = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(confirmed)}`)
        .expect(200);
      const stale = bearer(refreshed);
      const totpBefore = await t.store.findTotp(userId);
      expect(totpBefore?.active).toBe(true);
      const eventsBefore = events.length;
      for (const [path, body] of [
        ['/auth/totp/disable', { code: codeAt(t, secret) }],
        ['/auth/totp/disable', { backup_code: backupCodes[0], end_other_sessions: true }],
        ['/auth/totp/backup-codes', { code: codeAt(t, secret) }],
        ['/auth/totp/backup-codes', { backup_code: backupCodes[1], end_other_sessions: true }],
        // A malformed body too: the sign-in's age is checked first, and never answers 500.
        ['/auth/totp/disable', { code: 'x', end_other_sessions: 'yes' }],
      ] as const) {
        const res = await t.http().post(path).set('authorization', stale).send(body);
        expect({ path, status: res.status, body: res.body as unknown }).toEqual({ path, status: 401, body: STEP_UP });
        expect(res.headers['www-authenticate']).toBe(STEP_UP_HEADER);
      }
      // Nothing changed: 2FA on, no step or failure recorded, every backup code left, no session ended.
      expect(await t.store.findTotp(userId)).toEqual(totpBefore);
      expect(await t.store.listUsableBackupCodes(userId)).toHaveLength(10);
      expect(events.slice(eventsBefore)).toEqual([]);
      await t.http().get('/protected').set('authorization', stale).expect(200);
      await t.http().get('/protected').set('authorization', bearer(other)).expect(200);

      // A new sign-in with both factors may do both.
      const fresh = await twoFactorSignIn(email, secret);
      const regenerated = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', bearer(fresh))
        .send({ backup_code: backupCodes[0] })
        .expect(200);
      expect(regenerated.body).toEqual({ backup_codes: expect.any(Array), revoked_sessions: 0 });
      expect(regenerated.body.backup_codes).toHaveLength(10);
      t.clock.advance(30);
      const disabled = await t
        .http()
        .post('/auth/totp/disable')
        .set('authorization', bearer(fresh))
        .send({ code: codeAt(t, secret) })
        .expect(200);
      expect(disabled.body).toEqual({ message: 'Two-factor authentication disabled', revoked_sessions: 0 });
      expect(await t.store.findTotp(userId)).toBeNull();
      // Without end_other_sessions the other sessions go on.
      await t.http().get('/protected').set('authorization', stale).expect(200);
    });

    it('still needs a current code or a backup code from a fresh session', async () => {
      const { secret, confirmed } = await enroll(t, 'proof@example.com');
      const auth = bearer(confirmed);
      const live = new Set([-1, 0, 1].map((steps) => codeAt(t, secret, steps)));
      const wrong = ['000000', '111111', '222222', '333333'].find((c) => !live.has(c))!;
      for (const path of ['/auth/totp/disable', '/auth/totp/backup-codes']) {
        await t.http().post(path).set('authorization', auth).send({ end_other_sessions: true }).expect(400);
        await t
          .http()
          .post(path)
          .set('authorization', auth)
          .send({ code: wrong, end_other_sessions: true })
          .expect(401);
        await t
          .http()
          .post(path)
          .set('authorization', auth)
          .send({ backup_code: 'AAAAA-AAAAA', end_other_sessions: true })
          .expect(401);
      }
      expect((await t.store.findTotp(userIdOf(confirmed)))?.active).toBe(true);
    });

    it('totp.managementMaxAuthAge sets the window; it follows enrollmentMaxAuthAge unless set; false turns it off', async () => {
      await t.close();
      t = await createTestApp({ backend, platform, options: { totp: { managementMaxAuthAge: 60 } } });
      const first = await enroll(t, 'window@example.com');
      t.clock.advance(61);
      const res = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', bearer(first.confirmed))
        .send({ code: codeAt(t, first.secret) })
        .expect(401);
      expect(res.body.message).toBe('Sign in again: this needs a sign-in from the last minute.');
      expect(res.headers['www-authenticate']).toContain('max_age=60');
      // Enrolment keeps its own 15 minutes: setup passes the guard and answers 409 (2FA is on).
      await t.http().post('/auth/totp/setup').set('authorization', bearer(first.confirmed)).expect(409);

      await t.close();
      t = await createTestApp({ backend, platform, options: { totp: { enrollmentMaxAuthAge: false } } });
      const second = await enroll(t, 'anytime@example.com');
      t.clock.advance(24 * 3600);
      const refreshed = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(second.confirmed)}`)
        .expect(200);
      await t
        .http()
        .post('/auth/totp/disable')
        .set('authorization', bearer(refreshed))
        .send({ code: codeAt(t, second.secret) })
        .expect(200);
    });
  });

  describe('end_other_sessions', () => {
    it('ends every other session of the user at once, keeps this one, and the answer counts them', async () => {
      const email = 'many@example.com';
      const { secret, backupCodes, confirmed: a } = await enroll(t, email);
      const b = await twoFactorSignIn(email, secret);
      const c = await twoFactorSignIn(email, secret);
      const bystander = await signIn(t, 'bystander@example.com');

      // Not asked: nothing else ends.
      const kept = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', bearer(c))
        .send({ backup_code: backupCodes[0], end_other_sessions: false })
        .expect(200);
      expect(kept.body.revoked_sessions).toBe(0);
      for (const s of [a, b, c]) await t.http().get('/protected').set('authorization', bearer(s)).expect(200);

      const regenerated = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', bearer(c))
        .send({ backup_code: (kept.body.backup_codes as string[])[0], end_other_sessions: true })
        .expect(200);
      expect(regenerated.body).toEqual({ backup_codes: expect.any(Array), revoked_sessions: 2 });
      // At once, as logout-all: access tokens refused (revocation list), refresh tokens refused.
      for (const s of [a, b]) {
        await t.http().get('/protected').set('authorization', bearer(s)).expect(401);
        await t
          .http()
          .post('/auth/refresh')
          .set('cookie', `otp_refresh=${refreshCookie(s)}`)
          .expect(401);
      }
      await t.http().get('/protected').set('authorization', bearer(c)).expect(200);
      await t.http().get('/protected').set('authorization', bearer(bystander)).expect(200);
      // Audited with their own reason (confirm's revocation of the enrolling session is another).
      const ended = events.flatMap((e) =>
        e.type === 'session.revoked' && e.reason === 'other_sessions_ended' ? [e.sessionId] : [],
      );
      expect(ended.sort()).toEqual([a, b].map((s) => claimsOf(s.body.access_token as string).sid).sort());

      // The kept session goes on refreshing; disable ends the sessions opened since.
      const c2 = await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(c)}`)
        .expect(200);
      const d = await twoFactorSignIn(email, secret);
      t.clock.advance(30);
      const disabled = await t
        .http()
        .post('/auth/totp/disable')
        .set('authorization', bearer(c2))
        .send({ code: codeAt(t, secret), end_other_sessions: true })
        .expect(200);
      expect(disabled.body).toEqual({ message: 'Two-factor authentication disabled', revoked_sessions: 1 });
      await t.http().get('/protected').set('authorization', bearer(d)).expect(401);
      await t.http().get('/protected').set('authorization', bearer(c2)).expect(200);
      await t.http().get('/protected').set('authorization', bearer(bystander)).expect(200);
      expect(await t.store.listActiveSessionIds(userIdOf(c))).toEqual([claimsOf(c.body.access_token as string).sid]);
    });

    it('must be a boolean (400, nothing consumed)', async () => {
      const { secret, confirmed } = await enroll(t, 'bool@example.com');
      const userId = userIdOf(confirmed);
      const before = await t.store.findTotp(userId);
      t.clock.advance(30);
      for (const value of ['true', 1, null, {}, []]) {
        const res = await t
          .http()
          .post('/auth/totp/disable')
          .set('authorization', bearer(confirmed))
          .send({ code: codeAt(t, secret), end_other_sessions: value })
          .expect(400);
        expect(res.body.message).toEqual(['end_other_sessions must be a boolean']);
      }
      expect(await t.store.findTotp(userId)).toEqual(before);
    });
  });

  describe('backup codes at rest', () => {
    it('are scrypt hashes (N = 2^14, r = 8, p = 1) under one random salt per set, keyed by the secret', async () => {
      const email = 'scrypt@example.com';
      const { backupCodes, confirmed } = await enroll(t, email);
      const userId = userIdOf(confirmed);
      const rows = await t.store.listUsableBackupCodes(userId);
      const [salt, ...others] = new Set(rows.map((r) => r.salt));
      expect(others).toEqual([]);
      expect(salt).toMatch(/^[A-Za-z0-9_-]{22}$/); // 128 bits
      expect(rows.map((r) => r.hash).sort()).toEqual(backupCodes.map((code) => scryptHash(code, salt!)).sort());

      // A new set gets a new salt; each code still works once.
      const regenerated = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', bearer(confirmed))
        .send({ backup_code: backupCodes[0] })
        .expect(200);
      const fresh = await t.store.listUsableBackupCodes(userId);
      const [newSalt, ...more] = new Set(fresh.map((r) => r.salt));
      expect(more).toEqual([]);
      expect(newSalt).not.toBe(salt);
      expect(fresh.map((r) => r.hash).sort()).toEqual(
        (regenerated.body.backup_codes as string[]).map((code) => scryptHash(code, newSalt!)).sort(),
      );
      const code = (regenerated.body.backup_codes as string[])[3]!;
      const done = await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, email), backup_code: code })
        .expect(200);
      expect(claimsOf(done.body.access_token as string).amr).toEqual(['otp', 'backup']);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, email), backup_code: code })
        .expect(401);
    });

    it('sets stored in the earlier format (one fast HMAC and salt per code) keep working, once each', async () => {
      const email = 'legacy-codes@example.com';
      const { confirmed } = await enroll(t, email);
      const userId = userIdOf(confirmed);
      // Written as the module did before scrypt: BackupCodeHasher.hash with a salt per code.
      const hasher = new BackupCodeHasher(TEST_SECRET);
      const legacy = [newBackupCode(), newBackupCode()];
      legacy.forEach(recordSecret);
      const batch = randomUUID();
      expect(await t.store.setBackupBatch(userId, batch)).toBe(true);
      await t.store.insertBackupCodes(
        legacy.map((code) => {
          const salt = randomBytes(16).toString('base64url');
          return { id: randomUUID(), userId, batch, salt, hash: hasher.hash(code, salt), usedAt: null };
        }),
      );
      expect((await t.store.listUsableBackupCodes(userId)).map((r) => r.hash)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^[0-9a-f]{8}\./)]),
      );
      const signedIn = await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, email), backup_code: legacy[0] })
        .expect(200);
      await t
        .http()
        .post('/auth/totp/verify')
        .send({ mfa_token: await firstFactor(t, email), backup_code: legacy[0] })
        .expect(401);
      // The other old code replaces the set; the new one is stored with scrypt.
      const regenerated = await t
        .http()
        .post('/auth/totp/backup-codes')
        .set('authorization', bearer(signedIn))
        .send({ backup_code: legacy[1] })
        .expect(200);
      const rows = await t.store.listUsableBackupCodes(userId);
      expect(rows.map((r) => r.hash).sort()).toEqual(
        (regenerated.body.backup_codes as string[]).map((code) => scryptHash(code, rows[0]!.salt)).sort(),
      );
    });
  });
});

describe('OpenAPI of the two-factor management routes', () => {
  it('documents end_other_sessions (boolean) and revoked_sessions on disable and backup-codes', async () => {
    const t = await createTestApp({ backend: enabledBackends()[0]! });
    try {
      const doc = SwaggerModule.createDocument(t.app, new DocumentBuilder().build());
      const schemas = doc.components?.schemas as Record<string, { properties: Record<string, unknown> }>;
      expect(schemas['ManageSecondFactorDto']?.properties['end_other_sessions']).toMatchObject({
        type: 'boolean',
        default: false,
      });
      for (const [path, answer] of [
        ['/auth/totp/disable', 'TotpDisabledResponseDto'],
        ['/auth/totp/backup-codes', 'RegeneratedBackupCodesResponseDto'],
      ] as const) {
        const operation = doc.paths[path]?.post;
        expect(JSON.stringify(operation?.requestBody)).toContain('#/components/schemas/ManageSecondFactorDto');
        expect(JSON.stringify(operation?.responses['200'])).toContain(`#/components/schemas/${answer}`);
        expect(JSON.stringify(operation?.responses['401'])).toContain('insufficient_user_authentication');
      }
      expect(schemas['RegeneratedBackupCodesResponseDto']?.properties).toHaveProperty('revoked_sessions');
      expect(schemas['TotpDisabledResponseDto']?.properties).toHaveProperty('revoked_sessions');
    } finally {
      await t.close();
    }
  });
});
