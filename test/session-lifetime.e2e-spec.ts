import jwt from 'jsonwebtoken';
import { OtpAuthService, SecretKeys, type OtpAuthModuleOptions, type TimedOtpAuthEvent } from 'nestjs-otp-auth';
import type request from 'supertest';
import { enabledBackends } from './support/databases.js';
import {
  createTestApp,
  refreshCookie,
  setCookieHeader,
  signIn,
  type Platform,
  type TestApp,
} from './support/test-app.js';

/**
 * Session lifetime (issue 13): `sessionMaxAge` ends a session however often it is refreshed, and
 * `sessionIdleTimeout` ends one that was not refreshed for too long. Time moves with the test clock.
 */

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

const DAY = 24 * 3600;

describe.each(cases)('session lifetime on %s / %s', (backend, platform) => {
  let t: TestApp;
  let events: TimedOtpAuthEvent[];

  async function start(options: Partial<OtpAuthModuleOptions>): Promise<void> {
    events = [];
    t = await createTestApp({ backend, platform, options: { ...options, onEvent: (e) => void events.push(e) } });
  }
  afterEach(async () => {
    await t.close();
  });

  const refresh = (token: string) => t.http().post('/auth/refresh').set('cookie', `otp_refresh=${token}`);
  const authTime = (res: request.Response): unknown =>
    (jwt.decode(res.body.access_token as string) as { auth_time: number }).auth_time;
  /** The stored refresh token of a cookie value, with its session. */
  const stored = async (token: string) => {
    const found = await t.store.findRefreshToken(t.app.get(SecretKeys).hashRefreshToken(token));
    if (!found) throw new Error('refresh token not stored');
    return found;
  };
  const revocations = () => events.filter((e) => e.type === 'session.revoked');

  describe('sessionMaxAge 300 with refreshTokenTtl 60', () => {
    beforeEach(() => start({ refreshTokenTtl: 60, sessionMaxAge: 300 }));

    it('refreshing every 45 s keeps the session only until 300 s: then 401, session.revoked max_age', async () => {
      const login = await signIn(t, 'busy@example.com');
      const signedIn = authTime(login);
      let token = refreshCookie(login)!;
      let last = login;
      for (let elapsed = 45; elapsed <= 270; elapsed += 45) {
        t.clock.advance(45);
        last = await refresh(token).expect(200);
        expect(authTime(last)).toBe(signedIn); // refreshing never renews the sign-in
        token = refreshCookie(last)!;
      }
      expect(revocations()).toEqual([]);
      t.clock.advance(45); // 315 s
      const refused = await refresh(token).expect(401);
      expect(refused.body).toEqual((await refresh('not-a-token').expect(401)).body);
      const sessionId = (events.find((e) => e.type === 'session.created') as { sessionId: string }).sessionId;
      expect(revocations()).toEqual([expect.objectContaining({ sessionId, reason: 'max_age' })]);
      expect((await stored(token)).session.revokedAt).toBe(t.clock.now());
      // The session's access tokens end with it.
      await t
        .http()
        .get('/protected')
        .set('authorization', `Bearer ${last.body.access_token as string}`)
        .expect(401);
    });

    it('caps a successor near the end at sign-in + sessionMaxAge (stored expiry and refreshExpiresIn)', async () => {
      const login = await signIn(t, 'capped@example.com');
      const first = await stored(refreshCookie(login)!);
      const end = first.session.createdAt + 300_000;
      expect(first.token.expiresAt).toBe(first.session.createdAt + 60_000); // far from the end: the full TTL
      let token = refreshCookie(login)!;
      for (let i = 0; i < 6; i++) {
        t.clock.advance(45);
        token = refreshCookie(await refresh(token).expect(200))!;
      }
      // Issued at 270 s: 30 s left of the session, not the 60 s TTL.
      expect((await stored(token)).token.expiresAt).toBe(end);
      t.clock.advance(29); // 299 s
      const service = t.app.get(OtpAuthService);
      const near = await service.refresh(token);
      expect(near.refreshExpiresIn).toBe(1);
      expect((await stored(near.refreshToken)).token.expiresAt).toBe(end);
      t.clock.advance(1); // exactly 300 s: over
      await refresh(near.refreshToken).expect(401);
      expect(revocations()).toEqual([expect.objectContaining({ reason: 'max_age' })]);
    });

    it('caps the refresh cookie Max-Age near the end of the session', async () => {
      const login = await signIn(t, 'cookie@example.com');
      expect(setCookieHeader(login)).toMatch(/Max-Age=60(;|$)/);
      let token = refreshCookie(login)!;
      for (let i = 0; i < 5; i++) {
        t.clock.advance(45);
        token = refreshCookie(await refresh(token).expect(200))!;
      }
      t.clock.advance(45); // 270 s: 30 s left
      expect(setCookieHeader(await refresh(token).expect(200))).toMatch(/Max-Age=30(;|$)/);
    });

    it('refuses the grace-period repeat of a just-rotated token once past the max age', async () => {
      const login = await signIn(t, 'tabs@example.com');
      let token = refreshCookie(login)!;
      for (let i = 0; i < 6; i++) {
        t.clock.advance(45);
        token = refreshCookie(await refresh(token).expect(200))!;
      }
      t.clock.advance(27); // 297 s
      const a = await refresh(token).expect(200);
      t.clock.advance(2); // 299 s, inside the 5 s grace period and the session: the same successor
      expect(refreshCookie(await refresh(token).expect(200))).toBe(refreshCookie(a));
      t.clock.advance(2); // 301 s, still inside the grace period of the rotation at 297 s
      await refresh(token).expect(401);
      expect(revocations()).toEqual([expect.objectContaining({ reason: 'max_age' })]);
      expect(events.map((e) => e.type)).not.toContain('refresh.reuse_detected');
      await refresh(refreshCookie(a)!).expect(401);
    });
  });

  describe('sessionIdleTimeout 120 with refreshTokenTtl 600', () => {
    beforeEach(() => start({ refreshTokenTtl: 600, sessionIdleTimeout: 120 }));

    it('a refresh within the idle timeout works; one after it answers 401 and revokes the session', async () => {
      const login = await signIn(t, 'idle@example.com');
      t.clock.advance(119);
      const one = await refresh(refreshCookie(login)!).expect(200);
      t.clock.advance(120); // exactly the timeout: not more than it
      const two = await refresh(refreshCookie(one)!).expect(200);
      expect(revocations()).toEqual([]);
      t.clock.advance(121);
      const refused = await refresh(refreshCookie(two)!).expect(401);
      expect(refused.body).toEqual((await refresh('not-a-token').expect(401)).body);
      const sessionId = (events.find((e) => e.type === 'session.created') as { sessionId: string }).sessionId;
      expect(revocations()).toEqual([expect.objectContaining({ sessionId, reason: 'idle_timeout' })]);
      await t
        .http()
        .get('/protected')
        .set('authorization', `Bearer ${two.body.access_token as string}`)
        .expect(401);
    });

    it('the grace repeat of a rotation made in time is honoured even past the idle timeout of its token', async () => {
      const login = await signIn(t, 'idle-tabs@example.com');
      const original = refreshCookie(login)!;
      t.clock.advance(119);
      const a = await refresh(original).expect(200);
      t.clock.advance(3); // 122 s after the original was issued, 3 s after its rotation
      expect(refreshCookie(await refresh(original).expect(200))).toBe(refreshCookie(a));
      expect(revocations()).toEqual([]);
    });

    it('a rotated token presented after the idle timeout is still reported as reuse', async () => {
      const login = await signIn(t, 'idle-thief@example.com');
      const original = refreshCookie(login)!;
      t.clock.advance(60);
      await refresh(original).expect(200);
      t.clock.advance(121);
      await refresh(original).expect(401);
      expect(events.map((e) => e.type)).toContain('refresh.reuse_detected');
      expect(revocations()).toEqual([expect.objectContaining({ reason: 'refresh_reuse' })]);
    });
  });

  describe('defaults (sessionMaxAge 30 days, no idle timeout)', () => {
    beforeEach(() => start({}));

    it('normal use is unchanged: full 7-day refresh tokens, refreshes days apart, auth_time kept, until 30 days', async () => {
      const login = await signIn(t, 'daily@example.com');
      const signedIn = authTime(login);
      let token = refreshCookie(login)!;
      const almostAWeek = 6 * DAY + 23 * 3600; // no refresh for that long: no idle timeout by default
      for (let i = 0; i < 3; i++) {
        t.clock.advance(almostAWeek);
        const res = await refresh(token).expect(200);
        expect(authTime(res)).toBe(signedIn);
        token = refreshCookie(res)!;
        expect((await stored(token)).token.expiresAt).toBe(t.clock.now() + 7 * DAY * 1000);
      }
      expect(revocations()).toEqual([]);
      // 27 days 20 h after sign-in: the successor is capped at 30 days, then the session ends.
      const { session } = await stored(token);
      t.clock.advance(almostAWeek);
      token = refreshCookie(await refresh(token).expect(200))!;
      expect((await stored(token)).token.expiresAt).toBe(session.createdAt + 30 * DAY * 1000);
      t.clock.advance((session.createdAt + 30 * DAY * 1000 - t.clock.now()) / 1000); // exactly 30 days
      await refresh(token).expect(401);
      expect(revocations()).toEqual([expect.objectContaining({ reason: 'max_age' })]);
    });
  });
});
