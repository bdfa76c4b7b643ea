import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { FallbackRateLimitStorage, type RateLimitOptions, type TimedOtpAuthEvent } from 'nestjs-otp-auth';
import { RedisRateLimitStorage } from 'nestjs-otp-auth/redis';
import { enabledBackends } from './support/databases.js';
import { createTestApp, type Platform, type TestApp } from './support/test-app.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

/** A Redis storage with its own key prefix, so parallel test files never share counters. */
function redisStorage(prefix = `otp:test:${randomUUID()}:`): RedisRateLimitStorage {
  return new RedisRateLimitStorage({ url: REDIS_URL, keyPrefix: prefix });
}

const tight = (overrides: RateLimitOptions = {}): RateLimitOptions => ({
  send: { perEmail: { limit: 3, window: 600 }, perEmailDaily: false, perIp: false, global: false },
  verify: { perEmail: false, perIp: false, global: false },
  ...overrides,
});

describe.each(cases)('request rate limits on %s / %s', (backend, platform) => {
  let t: TestApp;
  const apps: TestApp[] = [];
  const start = async (rateLimits: RateLimitOptions, extra: Parameters<typeof createTestApp>[0]['options'] = {}) => {
    const app = await createTestApp({ backend, platform, options: { resendCooldown: 0, rateLimits, ...extra } });
    apps.push(app);
    return app;
  };
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  it('limits sends per address with 429 and Retry-After, the same for unknown addresses, and never shows the address counter', async () => {
    t = await start(
      tight({
        send: {
          perEmail: { limit: 3, window: 600 },
          perEmailDaily: false,
          perIp: { limit: 100, window: 600 },
          global: false,
        },
      }),
      { autoCreateUser: false },
    );
    await t.store.createOrGetUser('known@example.com');
    for (const email of ['known@example.com', 'unknown@example.com']) {
      for (let i = 0; i < 3; i += 1) {
        const ok = await t.http().post('/auth/request-otp').send({ email }).expect(200);
        // Only the client's own counter is described: per-address counts would reveal others' activity.
        expect(ok.headers['ratelimit-policy']).toBe('"send-ip";q=100;w=600');
        expect(ok.headers['ratelimit']).toMatch(/^"send-ip";r=\d+;t=\d+$/);
      }
      const refused = await t.http().post('/auth/request-otp').send({ email }).expect(429);
      // Until the sliding window has room again: up to the window's length.
      expect(Number(refused.headers['retry-after'])).toBe(refused.body.retry_after);
      expect(refused.body.retry_after).toBeGreaterThan(0);
      expect(refused.headers['ratelimit-policy']).not.toContain('email');
      expect(refused.body).toMatchObject({
        statusCode: 429,
        message: expect.stringMatching(/try again in \d+ seconds/),
      });
    }
    // Known and unknown addresses were answered identically; only the known one got mail.
    expect(t.sent.map((s) => s.email)).toEqual(['known@example.com', 'known@example.com', 'known@example.com']);
    // Case and spaces do not make a new address.
    await t.http().post('/auth/request-otp').send({ email: ' KNOWN@example.com ' }).expect(429);
  });

  it('applies a limit set on a whole controller class of your own', async () => {
    t = await start(tight({ verify: { perEmail: false, perIp: { limit: 2, window: 600 }, global: false } }));
    await t.http().post('/limited-class/ping').expect(201);
    await t.http().post('/limited-class/ping').expect(201);
    await t.http().post('/limited-class/ping').expect(429);
  });

  it('keeps the daily cap per destination across windows (email bombing)', async () => {
    t = await start(
      tight({
        send: {
          perEmail: { limit: 2, window: 60 },
          perEmailDaily: { limit: 3, window: 86_400 },
          perIp: false,
          global: false,
        },
      }),
    );
    const email = 'bombed@example.com';
    // Start one hour into a UTC day: counters slide over fixed windows aligned to the epoch, so
    // how soon room returns depends on the time of day (see README, Rate limits).
    const DAY_MS = 86_400_000;
    t.clock.advance((DAY_MS - (t.clock.now() % DAY_MS)) / 1000 + 3600);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    await t.http().post('/auth/request-otp').send({ email }).expect(429);
    t.clock.advance(3600);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const refused = await t.http().post('/auth/request-otp').send({ email }).expect(429);
    // Two hours into the day with the cap used: room only after the day's window has passed.
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(20 * 3600);
    t.clock.advance(600);
    await t.http().post('/auth/request-otp').send({ email }).expect(429);
    expect(t.sent).toHaveLength(3);
  });

  it('limits verification per client IP, and rotating X-Forwarded-For does not escape it', async () => {
    t = await start(tight({ verify: { perEmail: false, perIp: { limit: 4, window: 600 }, global: false } }));
    for (let i = 0; i < 4; i += 1) {
      await t
        .http()
        .post('/auth/verify-otp')
        .set('x-forwarded-for', `203.0.113.${i}`)
        .send({ email: `ip${i}@example.com`, code: '123456' })
        .expect(401);
    }
    const refused = await t
      .http()
      .post('/auth/verify-otp')
      .set('x-forwarded-for', '198.51.100.77')
      .send({ email: 'fresh@example.com', code: '123456' })
      .expect(429);
    expect(refused.headers['ratelimit-policy']).toBe('"verify-ip";q=4;w=600');
  });

  it('with a trusted proxy, counts each forwarded client separately', async () => {
    t = await start(
      tight({
        trustProxy: ['127.0.0.1', '::1'],
        verify: { perEmail: false, perIp: { limit: 1, window: 600 }, global: false },
      }),
    );
    const verify = (xff: string) =>
      t.http().post('/auth/verify-otp').set('x-forwarded-for', xff).send({ email: 'p@example.com', code: '123456' });
    await verify('203.0.113.1').expect(401);
    await verify('203.0.113.2').expect(401);
    await verify('203.0.113.1').expect(429);
    // A client prepending a fake hop is still counted by the address the proxy saw.
    await verify('10.9.9.9, 203.0.113.2').expect(429);
  });

  it('applies a global ceiling across addresses and IPs', async () => {
    t = await start(
      tight({ send: { perEmail: false, perEmailDaily: false, perIp: false, global: { limit: 3, window: 60 } } }),
    );
    for (let i = 0; i < 3; i += 1)
      await t
        .http()
        .post('/auth/request-otp')
        .send({ email: `g${i}@example.com` })
        .expect(200);
    await t.http().post('/auth/request-otp').send({ email: 'g9@example.com' }).expect(429);
  });

  it('shares counters between instances through Redis', async () => {
    const prefix = `otp:test:${randomUUID()}:`;
    const a = await start(tight({ storage: redisStorage(prefix) }));
    const b = await start(tight({ storage: redisStorage(prefix) }));
    const email = 'shared@example.com';
    await a.http().post('/auth/request-otp').send({ email }).expect(200);
    await b.http().post('/auth/request-otp').send({ email }).expect(200);
    await a.http().post('/auth/request-otp').send({ email }).expect(200);
    await b.http().post('/auth/request-otp').send({ email }).expect(429);
  });
});

describe('when Redis is unreachable', () => {
  let dead: Server;
  const sockets = new Set<Socket>();
  let deadUrl: string;
  const apps: TestApp[] = [];
  const backend = enabledBackends()[0]!;

  beforeAll(async () => {
    // A port that accepts and then hangs: the worst case, a server that never answers.
    dead = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    deadUrl = `redis://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => dead.close(resolve));
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  const start = async (policy: RateLimitOptions['onStorageError'], events: TimedOtpAuthEvent[] = []) => {
    const app = await createTestApp({
      backend,
      options: {
        resendCooldown: 0,
        onEvent: (e) => void events.push(e),
        rateLimits: tight({ storage: new RedisRateLimitStorage({ url: deadUrl }), onStorageError: policy }),
      },
    });
    apps.push(app);
    return app;
  };

  it("'local' (the default) keeps limiting in this instance's memory, answers fast, and reports it", async () => {
    const events: TimedOtpAuthEvent[] = [];
    const t = await start('local', events);
    const started = performance.now();
    for (let i = 0; i < 3; i += 1)
      await t.http().post('/auth/request-otp').send({ email: 'l@example.com' }).expect(200);
    await t.http().post('/auth/request-otp').send({ email: 'l@example.com' }).expect(429);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(events.filter((e) => e.type === 'rate_limit.storage_unavailable')).not.toHaveLength(0);
    expect(events.find((e) => e.type === 'rate_limit.storage_unavailable')).toMatchObject({ policy: 'local' });
  });

  it("'fail-closed' answers 503 with Retry-After, and nothing is sent", async () => {
    const t = await start('fail-closed');
    const res = await t.http().post('/auth/request-otp').send({ email: 'c@example.com' }).expect(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(t.sent).toHaveLength(0);
  });

  it("an app's own FallbackRateLimitStorage keeps its policy (not wrapped again under the module's 'local')", async () => {
    const t = await createTestApp({
      backend,
      options: {
        resendCooldown: 0,
        rateLimits: tight({
          storage: new FallbackRateLimitStorage({
            primary: new RedisRateLimitStorage({ url: deadUrl }),
            policy: 'fail-closed',
          }),
        }),
      },
    });
    apps.push(t);
    await t.http().post('/auth/request-otp').send({ email: 'own@example.com' }).expect(503);
    expect(t.sent).toHaveLength(0);
  });

  it("'fail-open' lets requests through (the store's own guess limits still hold)", async () => {
    const t = await start('fail-open');
    for (let i = 0; i < 5; i += 1)
      await t.http().post('/auth/request-otp').send({ email: 'o@example.com' }).expect(200);
  });
});

describe('Redis is really used', () => {
  it('writes counters under the configured prefix and never the plain address', async () => {
    const prefix = `otp:test:${randomUUID()}:`;
    const t = await createTestApp({
      backend: enabledBackends()[0]!,
      options: { rateLimits: tight({ storage: redisStorage(prefix) }) },
    });
    const redis = new Redis(REDIS_URL);
    try {
      await t.http().post('/auth/request-otp').send({ email: 'visible@example.com' }).expect(200);
      const keys = await redis.keys(`${prefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.join()).not.toContain('visible');
    } finally {
      await redis.quit();
      await t.close();
    }
  });
});
