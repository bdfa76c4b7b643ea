import type { TimedOtpAuthEvent } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, type TestApp } from './support/test-app.js';
import { codeAt, enroll, firstFactor } from './support/totp-helpers.js';

describe.each(enabledBackends())('audit events on %s', (backend) => {
  let t: TestApp;
  let events: TimedOtpAuthEvent[];

  beforeEach(async () => {
    events = [];
    t = await createTestApp({
      backend,
      options: { onEvent: (event) => void events.push(event), maxAttempts: 2 },
    });
  });
  afterEach(async () => {
    await t.close();
  });

  const types = () => events.map((e) => e.type);

  it('reports sent, failed, locked-out and verified codes, sessions, reuse and revocation, with no secret in them', async () => {
    const email = 'audit@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    const wrong = code === '000000' ? '111111' : '000000';
    await t.http().post('/auth/verify-otp').send({ email, code: wrong }).expect(401);
    await t.http().post('/auth/verify-otp').send({ email, code: wrong }).expect(401);
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(401); // locked: 2 attempts used
    expect(types()).toEqual(['code.sent', 'code.failed', 'code.failed', 'code.locked_out']);
    expect(events[1]).toMatchObject({ email, reason: 'wrong', at: t.clock.now() });

    t.clock.advance(61);
    const signedIn = await signIn(t, email);
    const first = refreshCookie(signedIn)!;
    const rotated = await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${first}`).expect(200);
    t.clock.advance(10); // past the grace period: presenting the old token again is reuse
    await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${first}`).expect(401);
    expect(types().slice(4)).toEqual([
      'code.sent',
      'code.verified',
      'session.created',
      'refresh.reuse_detected',
      'session.revoked',
    ]);
    const sessionId = (events.find((e) => e.type === 'session.created') as { sessionId: string }).sessionId;
    expect(events.at(-1)).toMatchObject({ type: 'session.revoked', sessionId, reason: 'refresh_reuse' });

    const serialized = JSON.stringify(events);
    for (const secret of [code, t.lastCode(email), first, refreshCookie(rotated)!, signedIn.body.access_token]) {
      expect(serialized).not.toContain(secret);
    }
  });

  it('reports TOTP enabled, failed, replayed and disabled, without the secret or backup codes', async () => {
    const { secret, backupCodes, confirmed } = await enroll(t, 'totp-audit@example.com');
    expect(types()).toContain('totp.enabled');
    const mfa = await firstFactor(t, 'totp-audit@example.com');
    const again = await firstFactor(t, 'totp-audit@example.com');
    const good = codeAt(t, secret);
    await t.http().post('/auth/totp/verify').send({ mfa_token: mfa, code: good }).expect(200);
    await t.http().post('/auth/totp/verify').send({ mfa_token: again, code: good }).expect(401);
    expect(types()).toContain('totp.replayed');
    expect(types()).toContain('totp.failed');
    const session = await t
      .http()
      .post('/auth/totp/verify')
      .send({ mfa_token: again, backup_code: backupCodes[0] })
      .expect(200);
    await t
      .http()
      .post('/auth/totp/disable')
      .set('authorization', `Bearer ${session.body.access_token as string}`)
      .send({ backup_code: backupCodes[1] })
      .expect(200);
    expect(types()).toContain('totp.disabled');
    const serialized = JSON.stringify(events);
    for (const value of [secret, good, ...backupCodes, confirmed.body.access_token as string]) {
      expect(serialized).not.toContain(value);
    }
  });

  it('keeps signing in when the onEvent handler throws or rejects', async () => {
    await t.close();
    t = await createTestApp({
      backend,
      options: {
        onEvent: (event) => {
          if (event.type === 'code.sent') throw new Error('audit sink down');
          return Promise.reject(new Error('audit sink down'));
        },
      },
    });
    await signIn(t, 'resilient@example.com');
  });
});
