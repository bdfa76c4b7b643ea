import { randomUUID } from 'node:crypto';
import { UnauthorizedException } from '@nestjs/common';
import {
  OtpAuthService,
  deriveStatelessCode,
  SecretKeys,
  windowCounter,
  type OtpAuthModuleOptions,
  type TimedOtpAuthEvent,
} from 'nestjs-otp-auth';
import { RedisRateLimitStorage } from 'nestjs-otp-auth/redis';
import { enabledBackends } from './support/databases.js';
import { createTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const WINDOW = 300;

describe.each(enabledBackends())('stateless codes on %s', (backend) => {
  const apps: TestApp[] = [];
  let events: TimedOtpAuthEvent[];
  const start = async (options: Partial<OtpAuthModuleOptions> = {}) => {
    const app = await createTestApp({
      backend,
      options: {
        codeMode: 'stateless',
        stateless: { window: WINDOW, drift: 1 },
        resendCooldown: 30,
        onEvent: (e) => void events.push(e),
        ...options,
      },
    });
    apps.push(app);
    return app;
  };
  beforeEach(() => {
    events = [];
  });
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.close();
  });

  const windowEnd = (t: TestApp) => (Math.floor(t.clock.now() / (WINDOW * 1000)) + 1) * WINDOW * 1000;

  it('reports the real remaining lifetime, signs in once per code, and stores no code', async () => {
    const t = await start();
    const email = 'stateless@example.com';
    const requested = await t.http().post('/auth/request-otp').send({ email }).expect(200);
    // The code lives to the end of its window plus one drift window.
    const expected = Math.round((windowEnd(t) + WINDOW * 1000 - t.clock.now()) / 1000);
    expect(requested.body.expires_in).toBe(expected);
    expect(t.sent[0]).toMatchObject({ email, code: expect.stringMatching(/^\d{6}$/) });
    const code = t.lastCode(email);

    await t.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(401); // replay
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_codes');
    expect(Number(n)).toBe(0);
    expect(events.map((e) => e.type)).toContain('code.verified');
    expect(events.find((e) => e.type === 'code.failed')).toMatchObject({ reason: 'already_used' });
  });

  it('refuses a code of other characters through the service API with 401, never a 500', async () => {
    const t = await start();
    const email = 'wide@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const auth = t.app.get(OtpAuthService);
    for (const code of ['１２３４５６', '12345é', '1234567', '']) {
      await expect(auth.verifyOtp(email, code)).rejects.toBeInstanceOf(UnauthorizedException);
    }
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email, code: t.lastCode(email) })
      .expect(200);
  });

  it('accepts only codes that were issued: never-requested addresses and untaken slots are refused', async () => {
    const t = await start();
    const key = new SecretKeys(TEST_SECRET).statelessCode;
    const window = windowCounter(t.clock.now(), WINDOW);
    const forged = (email: string, slot: number) => deriveStatelessCode(key, 'login', email, window * 16 + slot, 6);
    // Someone holding the derivation but no issued code gets nowhere.
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'never@example.com', code: forged('never@example.com', 0) })
      .expect(401);
    await t.http().post('/auth/request-otp').send({ email: 'once@example.com' }).expect(200);
    expect(t.lastCode('once@example.com')).toBe(forged('once@example.com', 0)); // the derivation is what was sent
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'once@example.com', code: forged('once@example.com', 1) })
      .expect(401);
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'once@example.com', code: t.lastCode('once@example.com') })
      .expect(200);
  });

  it('answers 503 (never a replayable code) while Redis is down, whatever the rate-limit policy', async () => {
    const t = await start({
      rateLimits: {
        enabled: false,
        onStorageError: 'fail-open',
        storage: new RedisRateLimitStorage({ url: 'redis://127.0.0.1:1' }),
      },
    });
    const res = await t.http().post('/auth/request-otp').send({ email: 'down@example.com' }).expect(503);
    expect(res.body.message).toMatch(/unavailable/i);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    const verify = await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'down@example.com', code: '123456' })
      .expect(503);
    expect(Number(verify.headers['retry-after'])).toBeGreaterThan(0);
    expect(t.sent).toHaveLength(0);
  });

  it('gives a second sign-in in the same window a new code, after the cooldown', async () => {
    const t = await start();
    const email = 'twice@example.com';
    // Stay inside one window for the whole test.
    if (windowEnd(t) - t.clock.now() < 120_000) t.clock.advance((windowEnd(t) - t.clock.now()) / 1000 + 1);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const first = t.lastCode(email);
    const early = await t.http().post('/auth/request-otp').send({ email }).expect(429);
    expect(Number(early.headers['retry-after'])).toBeGreaterThan(0);
    await t.http().post('/auth/verify-otp').send({ email, code: first }).expect(200);
    t.clock.advance(31);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const second = t.lastCode(email);
    expect(second).not.toBe(first);
    await t.http().post('/auth/verify-otp').send({ email, code: second }).expect(200);
  });

  it('accepts a code through the drift window and refuses it after', async () => {
    const t = await start();
    const email = 'drift@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    t.clock.advance((windowEnd(t) - t.clock.now()) / 1000 + WINDOW - 1); // last second of the next window
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(200);

    await t.http().post('/auth/request-otp').send({ email: 'late@example.com' }).expect(200);
    const late = t.lastCode('late@example.com');
    t.clock.advance((windowEnd(t) - t.clock.now()) / 1000 + WINDOW + 1); // past the drift window
    await t.http().post('/auth/verify-otp').send({ email: 'late@example.com', code: late }).expect(401);
  });

  it('caps guesses: 40 parallel wrong guesses evaluate at most maxAttempts, then even the right code fails', async () => {
    const t = await start({ maxAttempts: 3 });
    const email = 'guessed@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    const wrong = code === '000000' ? '000001' : '000000';
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => t.http().post('/auth/verify-otp').send({ email, code: wrong })),
    );
    expect(answers.every((a) => a.status === 401)).toBe(true);
    expect(events.filter((e) => e.type === 'code.failed' && e.reason === 'wrong')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'code.locked_out')).toHaveLength(37);
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(401);
  });

  it('30 parallel submissions of the right code give exactly one session', async () => {
    const t = await start({ maxAttempts: 50 });
    const email = 'race@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => t.http().post('/auth/verify-otp').send({ email, code })),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 401)).toHaveLength(29);
  });

  it('works across two instances through Redis: issued on one, used on the other, replay refused on both', async () => {
    const prefix = `otp:test:${randomUUID()}:`;
    const storage = () => new RedisRateLimitStorage({ url: REDIS_URL, keyPrefix: prefix });
    const a = await start({ rateLimits: { enabled: false, storage: storage() } });
    const b = await createTestApp({
      backend,
      database: a.database,
      options: {
        codeMode: 'stateless',
        stateless: { window: WINDOW, drift: 1 },
        resendCooldown: 30,
        rateLimits: { enabled: false, storage: storage() },
        clock: a.clock.now,
      },
    });
    apps.push(b);
    const email = 'two-instances@example.com';
    await a.http().post('/auth/request-otp').send({ email }).expect(200);
    await b.http().post('/auth/request-otp').send({ email }).expect(429); // the cooldown is shared
    const code = a.lastCode(email);
    await b.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    await a.http().post('/auth/verify-otp').send({ email, code }).expect(401);
    await b.http().post('/auth/verify-otp').send({ email, code }).expect(401);
  });
});
