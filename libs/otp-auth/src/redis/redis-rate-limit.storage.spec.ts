import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RateLimitCounter } from '../rate-limits/rate-limit-storage.interface.js';
import { DEFAULT_RATE_LIMIT_KEY_PREFIX, RedisRateLimitStorage } from './redis-rate-limit.storage.js';

// Core semantics (limits, sliding, all-or-nothing, reset) are checked for every storage by
// rate-limits/rate-limit-storage.contract.spec.ts; this file covers what is Redis-specific.

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const PREFIX = `otp:rl:test:${randomUUID()}:`;
const T0 = 1_700_000_040_000;

describe('RedisRateLimitStorage', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('never allows more than the limit to 200 parallel calls from two connections', async () => {
    const [a, b] = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
    try {
      const storages = [a, b].map((client) => new RedisRateLimitStorage({ client, keyPrefix: PREFIX }));
      const c: RateLimitCounter = { key: 'parallel', limit: 50, windowMs: 60_000 };
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) => storages[i % 2]!.consume([c], T0 + (i % 7))),
      );
      expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
      expect(await redis.hget(`${PREFIX}parallel`, 'c')).toBe('50');
    } finally {
      await Promise.all([a.quit(), b.quit()]);
    }
  });

  it('keeps one small hash per counter, under the key prefix', async () => {
    const storage = new RedisRateLimitStorage({ client: redis, keyPrefix: PREFIX });
    await storage.consume([{ key: 'layout', limit: 5, windowMs: 60_000 }], T0 + 61_000);
    expect(await redis.hgetall(`${PREFIX}layout`)).toEqual({
      w: '60000',
      i: String(Math.floor((T0 + 61_000) / 60_000)),
      p: '0',
      c: '1',
    });
    expect(DEFAULT_RATE_LIMIT_KEY_PREFIX).toBe('otp:rl:');
  });

  it('lets Redis expire a counter once its counts have decayed', async () => {
    const storage = new RedisRateLimitStorage({ client: redis, keyPrefix: PREFIX });
    const windowMs = 100;
    const now = Date.now();
    await storage.consume([{ key: 'expiring', limit: 5, windowMs }], now);
    const ttl = await redis.pttl(`${PREFIX}expiring`);
    // Two windows from the start of the current one, plus a 1 s margin for lagging clocks.
    expect(ttl).toBeGreaterThan(windowMs + 900);
    expect(ttl).toBeLessThanOrEqual(2 * windowMs + 1000);
    const deadline = Date.now() + 3000;
    while ((await redis.exists(`${PREFIX}expiring`)) === 1 && Date.now() < deadline) await sleep(50);
    expect(await redis.exists(`${PREFIX}expiring`)).toBe(0);
  });

  it('does not write anything for a refused call', async () => {
    const storage = new RedisRateLimitStorage({ client: redis, keyPrefix: PREFIX });
    const full: RateLimitCounter = { key: 'full', limit: 1, windowMs: 60_000 };
    await storage.consume([full], T0);
    const refused = await storage.consume([full, { key: 'untouched', limit: 5, windowMs: 60_000 }], T0);
    expect(refused.allowed).toBe(false);
    expect(await redis.exists(`${PREFIX}untouched`)).toBe(0);
  });

  it('answers within a few milliseconds', async () => {
    const storage = new RedisRateLimitStorage({ client: redis, keyPrefix: PREFIX });
    const counters: RateLimitCounter[] = [
      { key: 'latency:address', limit: 1_000_000, windowMs: 60_000 },
      { key: 'latency:email', limit: 1_000_000, windowMs: 3_600_000 },
    ];
    const times: number[] = [];
    for (let i = 0; i < 500; i++) {
      const started = performance.now();
      await storage.consume(counters, T0 + i);
      times.push(performance.now() - started);
    }
    times.sort((x, y) => x - y);
    expect(times[Math.floor(times.length * 0.99)]!).toBeLessThan(50); // local Redis: ~0.1–0.3 ms
  });

  it('quits a client it created from a URL, and leaves yours open', async () => {
    const owned = new RedisRateLimitStorage({ url: REDIS_URL, keyPrefix: PREFIX });
    await new Promise<void>((resolve) => (owned.client as Redis).once('ready', () => resolve()));
    expect((await owned.consume([{ key: 'owned', limit: 1, windowMs: 1000 }], T0)).allowed).toBe(true);
    await owned.close();
    expect((owned.client as Redis).status).toBe('end');

    const yours = new RedisRateLimitStorage({ client: redis, keyPrefix: PREFIX });
    await yours.close();
    expect(redis.status).toBe('ready');
    expect(await redis.ping()).toBe('PONG');
  });

  it('init() connects a lazy client and loads the script', async () => {
    const storage = new RedisRateLimitStorage({
      url: REDIS_URL,
      keyPrefix: PREFIX,
      redisOptions: { lazyConnect: true },
    });
    try {
      expect((storage.client as Redis).status).toBe('wait');
      await storage.init();
      expect((storage.client as Redis).status).toBe('ready');
      expect((await storage.consume([{ key: 'lazy', limit: 1, windowMs: 1000 }], T0)).allowed).toBe(true);
    } finally {
      await storage.close();
    }
  });

  it('init() fails fast when Redis cannot be reached', async () => {
    const server = createServer();
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
    await new Promise((resolve) => server.close(resolve));
    const storage = new RedisRateLimitStorage({ url: `redis://127.0.0.1:${port}`, keyPrefix: PREFIX });
    try {
      const started = performance.now();
      await expect(storage.init()).rejects.toThrow(/ECONNREFUSED/);
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await storage.close();
    }
  });

  it('shares the script definition between storages on one client', async () => {
    const first = new RedisRateLimitStorage({ client: redis, keyPrefix: `${PREFIX}one:` });
    const second = new RedisRateLimitStorage({ client: redis, keyPrefix: `${PREFIX}two:` });
    const c: RateLimitCounter = { key: 'same-name', limit: 1, windowMs: 60_000 };
    expect((await first.consume([c], T0)).allowed).toBe(true);
    expect((await second.consume([c], T0)).allowed).toBe(true); // another prefix, another counter
    expect((await first.consume([c], T0)).allowed).toBe(false);
  });

  it('requires a client or a URL', () => {
    expect(() => new RedisRateLimitStorage({} as never)).toThrow(/client.*url/);
  });
});
