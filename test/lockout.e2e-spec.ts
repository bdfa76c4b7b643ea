import type { RateLimitOptions, TimedOtpAuthEvent } from 'nestjs-otp-auth';
import { OtpAuthService } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, type Platform, type TestApp } from './support/test-app.js';

// The lockout model (issue 13, items 3, 6 and 11): what a stranger who knows someone's address
// can and cannot do to that person's sign-in, over HTTP on every database.

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

const VICTIM = 'victim@example.com';
const STRANGER_IP = '203.0.113.7';
const VICTIM_IP = '198.51.100.20';

/** Limits with the module's defaults, but clients told apart by X-Forwarded-For from loopback. */
const limits = (overrides: RateLimitOptions = {}): RateLimitOptions => ({
  enabled: true,
  trustProxy: ['127.0.0.1', '::1'],
  ...overrides,
});

describe.each(cases)('lockout model on %s / %s', (backend, platform) => {
  const apps: TestApp[] = [];
  let events: TimedOtpAuthEvent[];
  const start = async (options: Parameters<typeof createTestApp>[0]['options']): Promise<TestApp> => {
    events = [];
    const app = await createTestApp({
      backend,
      platform,
      options: { onEvent: (event) => void events.push(event), ...options },
    });
    apps.push(app);
    return app;
  };
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  const requestOtp = (t: TestApp, email: string, ip: string) =>
    t.http().post('/auth/request-otp').set('x-forwarded-for', ip).send({ email });
  const verifyOtp = (t: TestApp, email: string, code: string, ip: string) =>
    t.http().post('/auth/verify-otp').set('x-forwarded-for', ip).send({ email, code });

  it('requests refused by the resend cooldown do not spend the address allowance (default limits)', async () => {
    const t = await start({ rateLimits: limits() });
    await requestOtp(t, VICTIM, STRANGER_IP).expect(200);
    // Five more at once: each refused by the 60 s cooldown, none sent, none counted.
    for (let i = 0; i < 5; i += 1) {
      const refused = await requestOtp(t, VICTIM, STRANGER_IP).expect(429);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    }
    expect(t.sent).toHaveLength(1);
    t.clock.advance(61);
    // A minute later the owner (and, from the same network, anyone) gets a code at once.
    await requestOtp(t, VICTIM, VICTIM_IP).expect(200);
    t.clock.advance(61);
    await requestOtp(t, VICTIM, STRANGER_IP).expect(200);
    expect(t.sent).toHaveLength(3);
  });

  it('bodies refused by validation do not spend the address allowance of verify-otp (default limits)', async () => {
    const t = await start({ rateLimits: limits() });
    await requestOtp(t, VICTIM, VICTIM_IP).expect(200);
    // Ten malformed guesses from the owner's own network (the default per-address limit is 10).
    for (let i = 0; i < 10; i += 1) await verifyOtp(t, VICTIM, 'x', VICTIM_IP).expect(400);
    const ok = await verifyOtp(t, VICTIM, t.lastCode(VICTIM), VICTIM_IP).expect(200);
    expect(ok.body.access_token).toEqual(expect.any(String));
  });

  it('a stranger spends only the allowance of their own network; the address-wide ceiling still holds', async () => {
    const t = await start({
      resendCooldown: 0,
      autoCreateUser: false,
      rateLimits: limits({
        send: {
          perEmail: { limit: 2, window: 600 },
          perEmailDaily: false,
          perEmailTotal: { limit: 5, window: 600 },
          perEmailDailyTotal: false,
        },
      }),
    });
    await t.store.createOrGetUser(VICTIM);
    for (const email of [VICTIM, 'nobody@example.com']) {
      await requestOtp(t, email, STRANGER_IP).expect(200);
      await requestOtp(t, email, STRANGER_IP).expect(200);
      const refused = await requestOtp(t, email, STRANGER_IP).expect(429);
      expect(Number(refused.headers['retry-after'])).toBe(refused.body.retry_after);
      // The per-address counters are never described in headers (they would reveal others' use).
      expect(String(refused.headers['ratelimit-policy'])).not.toContain('email');
      // The owner, from another network, is not affected.
      await requestOtp(t, email, VICTIM_IP).expect(200);
      // Two more networks reach the address-wide ceiling of 5: then nobody gets a code, for a
      // known and an unknown address alike.
      await requestOtp(t, email, '192.0.2.1').expect(200);
      await requestOtp(t, email, '192.0.2.2').expect(200);
      const ceiling = await requestOtp(t, email, '192.0.2.3').expect(429);
      const owner = await requestOtp(t, email, VICTIM_IP).expect(429);
      expect(owner.body).toEqual(ceiling.body);
    }
    expect(t.sent.filter((s) => s.email === VICTIM)).toHaveLength(5);
    expect(events.filter((e) => e.type === 'rate_limit.exceeded').map((e) => 'scope' in e && e.scope)).toEqual([
      'send-email',
      'send-email-total',
      'send-email-total',
      'send-email',
      'send-email-total',
      'send-email-total',
    ]);
  });

  it('an app calling OtpAuthService without an IP gets the same per-address limits, with retryAfterSeconds', async () => {
    const t = await start({
      resendCooldown: 0,
      rateLimits: limits({ send: { perEmail: { limit: 1, window: 600 }, perEmailDaily: false } }),
    });
    const auth = t.app.get(OtpAuthService);
    await auth.requestOtp(VICTIM);
    await expect(auth.requestOtp(VICTIM)).rejects.toMatchObject({ status: 429, retryAfterSeconds: expect.any(Number) });
    // The HTTP client is another client: its own bucket.
    await requestOtp(t, VICTIM, VICTIM_IP).expect(200);
  });

  it('counts wrong codes in a row across windows: the hard cap ends guessing until reset', async () => {
    // A short window that resets every minute, as before; the streak does not reset with it.
    const t = await start({
      resendCooldown: 0,
      maxAttempts: 3,
      addressFailureLimit: { max: 3, window: 60 },
      consecutiveFailures: { max: 7, backoffAfter: 100 },
    });
    const wrong = async (): Promise<void> => {
      const code = t.lastCode(VICTIM);
      const guess = code === '000000' ? '111111' : '000000';
      await verifyOtp(t, VICTIM, guess, STRANGER_IP).expect(401);
    };
    let failures = 0;
    while (failures < 7) {
      await requestOtp(t, VICTIM, STRANGER_IP).expect(200);
      for (let i = 0; i < 3 && failures < 7; i += 1, failures += 1) await wrong();
      t.clock.advance(61);
    }
    expect(events.filter((e) => e.type === 'code.failure_limit_reached')).toEqual([
      expect.objectContaining({ email: VICTIM, failures: 7 }),
    ]);
    // The owner's correct, fresh code is refused now, days later too (window: 30 days).
    await requestOtp(t, VICTIM, VICTIM_IP).expect(200);
    await verifyOtp(t, VICTIM, t.lastCode(VICTIM), VICTIM_IP).expect(401);
    t.clock.advance(3 * 86_400);
    await requestOtp(t, VICTIM, VICTIM_IP).expect(200);
    await verifyOtp(t, VICTIM, t.lastCode(VICTIM), VICTIM_IP).expect(401);
    expect(events.filter((e) => e.type === 'code.locked_out')).toHaveLength(2);
    // An operator lifts it (after confirming the owner); the refused attempts did not spend the code.
    await t.app.get(OtpAuthService).resetFailureStreak(' Victim@Example.com ');
    await verifyOtp(t, VICTIM, t.lastCode(VICTIM), VICTIM_IP).expect(200);
  });

  it('backs off between guesses after `backoffAfter` wrong codes, and a success starts the count again', async () => {
    const t = await start({
      resendCooldown: 0,
      maxAttempts: 100,
      addressFailureLimit: { max: 100, window: 3600 },
      consecutiveFailures: { max: 50, backoffAfter: 2 },
    });
    await requestOtp(t, VICTIM, STRANGER_IP).expect(200);
    const code = t.lastCode(VICTIM);
    const guess = code === '000000' ? '111111' : '000000';
    await verifyOtp(t, VICTIM, guess, STRANGER_IP).expect(401);
    await verifyOtp(t, VICTIM, guess, STRANGER_IP).expect(401);
    // Two in a row: the next guess waits 1 s, then 2 s, 4 s. Even the right code is refused
    // while waiting (the same 401, so nothing tells the guesser whether it was right).
    for (const wait of [1, 2, 4]) {
      await verifyOtp(t, VICTIM, code, VICTIM_IP).expect(401);
      t.clock.advance(wait - 0.5);
      await verifyOtp(t, VICTIM, code, VICTIM_IP).expect(401);
      t.clock.advance(0.5);
      await verifyOtp(t, VICTIM, guess, STRANGER_IP).expect(401);
    }
    t.clock.advance(8);
    await verifyOtp(t, VICTIM, code, VICTIM_IP).expect(200);
    // The streak is over: a wrong code now is the first of a new one, with no wait after it.
    await requestOtp(t, VICTIM, VICTIM_IP).expect(200);
    const next = t.lastCode(VICTIM);
    await verifyOtp(t, VICTIM, next === '000000' ? '111111' : '000000', VICTIM_IP).expect(401);
    await verifyOtp(t, VICTIM, next, VICTIM_IP).expect(200);
  });

  it('counts IPv6 clients per /64, /56 and /48, so stepping through prefixes does not reset them', async () => {
    const t = await start({
      resendCooldown: 0,
      rateLimits: limits({
        send: {
          perEmail: false,
          perEmailDaily: false,
          perEmailTotal: false,
          perEmailDailyTotal: false,
          perIp: { limit: 1, window: 600 },
          perIpv6Prefix56: { limit: 3, window: 600 },
          perIpv6Prefix48: { limit: 5, window: 600 },
          global: false,
        },
      }),
    });
    let n = 0;
    const send = (ip: string) => requestOtp(t, `user${(n += 1)}@example.com`, ip);
    const first = await send('2001:db8:1:200::1').expect(200);
    expect(first.headers['ratelimit-policy']).toBe('"send-ip";q=1;w=600, "send-ip56";q=3;w=600, "send-ip48";q=5;w=600');
    await send('2001:db8:1:200::2').expect(429); // the same /64
    await send('2001:db8:1:201::1').expect(200);
    await send('2001:db8:1:2ff::1').expect(200);
    await send('2001:db8:1:202::1').expect(429); // a fourth /64 of the same /56
    await send('2001:db8:1:300::1').expect(200); // another /56 of the same /48
    await send('2001:db8:1:400::1').expect(200);
    await send('2001:db8:1:500::1').expect(429); // a sixth of the /48
    await send('2001:db8:2::1').expect(200); // another /48
    // IPv4 clients have only the per-IP counter.
    await send('192.0.2.9').expect(200);
    await send('192.0.2.10').expect(200);
  });
});
