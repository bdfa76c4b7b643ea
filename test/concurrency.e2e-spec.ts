import { createTestApp, refreshCookie, signIn, type Platform, type TestApp } from './support/test-app.js';
import { enabledBackends } from './support/databases.js';

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

// SQLite serialises writes, so the invariants are trivially true there; they are checked on
// every enabled backend anyway, and mean most on PostgreSQL and MariaDB.
describe.each(cases)('concurrency invariants on %s / %s', (backend, platform) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ backend, platform, options: { refreshReuseGracePeriod: 0 } });
  });
  afterEach(async () => {
    await t.close();
  });

  it('100 parallel wrong guesses evaluate no more than maxAttempts; the code is then dead', async () => {
    const email = 'race@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const right = t.lastCode(email);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    const results = await Promise.all(
      Array.from({ length: 100 }, () => t.http().post('/auth/verify-otp').send({ email, code: wrong })),
    );
    expect(results.every((r) => r.status === 401)).toBe(true);
    const row = await t.store.findCode(email, 'login');
    expect(row?.attempts).toBe(5);
    expect(row?.failureCount).toBe(5);
    await t.http().post('/auth/verify-otp').send({ email, code: right }).expect(401);
  });

  it('50 parallel correct submissions open exactly one session', async () => {
    const email = 'once@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.http().post('/auth/verify-otp').send({ email, code })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 401)).toHaveLength(49);
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_sessions');
    expect(Number(n)).toBe(1);
    const users = await t.dataSource.query('SELECT COUNT(*) AS n FROM users');
    expect(Number(users[0].n)).toBe(1);
  });

  it('50 parallel code requests for one address send exactly one code', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.http().post('/auth/request-otp').send({ email: 'flood@example.com' })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 429)).toHaveLength(49);
    expect(t.sent).toHaveLength(1);
  });

  it('50 parallel refreshes with one token (no grace): one rotation, then reuse revokes the family', async () => {
    const login = await signIn(t, 'refresh-race@example.com');
    const token = refreshCookie(login)!;
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.http().post('/auth/refresh').set('cookie', `otp_refresh=${token}`)),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBeLessThanOrEqual(1);
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_refresh_tokens');
    expect(Number(n)).toBe(2); // the original and exactly one successor
    // Reuse was detected, so the session is dead, successor included.
    for (const r of ok)
      await t
        .http()
        .post('/auth/refresh')
        .set('cookie', `otp_refresh=${refreshCookie(r)}`)
        .expect(401);
  });
});

describe.each(cases)('parallel refresh inside the grace period on %s / %s', (backend, platform) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ backend, platform });
  });
  afterEach(async () => {
    await t.close();
  });

  it('50 parallel refreshes all get the same successor: one live chain', async () => {
    const login = await signIn(t, 'tabs-race@example.com');
    const token = refreshCookie(login)!;
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.http().post('/auth/refresh').set('cookie', `otp_refresh=${token}`)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(new Set(results.map((r) => refreshCookie(r))).size).toBe(1);
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_refresh_tokens');
    expect(Number(n)).toBe(2);
    await t
      .http()
      .post('/auth/refresh')
      .set('cookie', `otp_refresh=${refreshCookie(results[0]!)}`)
      .expect(200);
  });
});
