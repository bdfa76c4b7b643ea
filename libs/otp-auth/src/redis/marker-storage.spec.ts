// `getOrSet` (stateless mode's per-address epoch) and `describeMarkers` (its startup checks), for
// every storage that ships: in memory, Redis (real server), and Redis behind the fallback wrapper.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { FallbackRateLimitStorage } from '../rate-limits/fallback-rate-limit.storage.js';
import { InMemoryRateLimitStorage } from '../rate-limits/in-memory-rate-limit.storage.js';
import type { RateLimitStorage } from '../rate-limits/rate-limit-storage.interface.js';
import { RedisRateLimitStorage } from './redis-rate-limit.storage.js';
import { RateLimitUnavailableError } from '../errors.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const PREFIX = `otp:rl:test:${randomUUID()}:`;
const T0 = 1_700_000_040_000;

let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const factories: [string, () => RateLimitStorage][] = [
  ['InMemoryRateLimitStorage', () => new InMemoryRateLimitStorage()],
  ['RedisRateLimitStorage', () => new RedisRateLimitStorage({ client: redis, keyPrefix: `${PREFIX}redis:` })],
  [
    'FallbackRateLimitStorage over Redis',
    () =>
      new FallbackRateLimitStorage({
        primary: new RedisRateLimitStorage({ client: redis, keyPrefix: `${PREFIX}fallback:` }),
        policy: 'local', // markers must not fall back even so
      }),
  ],
];

describe.each(factories)('%s getOrSet', (_name, create) => {
  it('stores the first value and returns it to every later caller', async () => {
    const storage = create();
    const key = `first:${randomUUID()}`;
    expect(await storage.getOrSet!(key, 'a', 60_000, T0)).toBe('a');
    expect(await storage.getOrSet!(key, 'b', 60_000, T0 + 1)).toBe('a');
  });

  it('gives 50 concurrent callers with different values one and the same answer', async () => {
    const storage = create();
    const key = `race:${randomUUID()}`;
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => storage.getOrSet!(key, `v${i}`, 60_000, T0)),
    );
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toMatch(/^v\d+$/);
  });

  it('refuses an invalid lifetime as a programming error', async () => {
    const storage = create();
    await expect(storage.getOrSet!(`bad:${randomUUID()}`, 'a', 0, T0)).rejects.toBeInstanceOf(RangeError);
  });
});

describe('InMemoryRateLimitStorage getOrSet lifetime', () => {
  it('extends the lifetime, never shortens it, and forgets the value once expired', async () => {
    const storage = new InMemoryRateLimitStorage();
    expect(await storage.getOrSet('k', 'a', 1000, T0)).toBe('a');
    expect(await storage.getOrSet('k', 'b', 5000, T0 + 900)).toBe('a'); // now lives to T0 + 5900
    expect(await storage.getOrSet('k', 'c', 10, T0 + 5000)).toBe('a'); // not shortened to T0 + 5010
    expect(await storage.getOrSet('k', 'd', 1000, T0 + 5899)).toBe('a');
    expect(await storage.getOrSet('k', 'e', 1000, T0 + 6899)).toBe('e'); // expired at T0 + 6899
  });

  it('never evicts a live value: a full storage answers unavailable instead', async () => {
    const storage = new InMemoryRateLimitStorage({ maxKeys: 2 });
    await storage.getOrSet('a', '1', 60_000, T0);
    await storage.increment('b', 60_000, T0);
    await expect(storage.getOrSet('c', '3', 60_000, T0)).rejects.toBeInstanceOf(RateLimitUnavailableError);
    expect(await storage.getOrSet('a', 'x', 60_000, T0)).toBe('1');
  });
});

describe('RedisRateLimitStorage getOrSet', () => {
  it('agrees across two connections, extends the TTL without shortening it, and lets Redis expire the key', async () => {
    const [a, b] = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
    try {
      const storages = [a, b].map((client) => new RedisRateLimitStorage({ client, keyPrefix: PREFIX }));
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => storages[i % 2]!.getOrSet('shared', `v${i}`, 300, Date.now())),
      );
      expect(new Set(answers).size).toBe(1);
      await storages[0]!.getOrSet('shared', 'x', 60_000, Date.now());
      expect(await redis.pttl(`${PREFIX}shared`)).toBeGreaterThan(59_000);
      await storages[1]!.getOrSet('shared', 'x', 10, Date.now());
      expect(await redis.pttl(`${PREFIX}shared`)).toBeGreaterThan(59_000);

      await storages[0]!.getOrSet('short', 'old', 50, Date.now());
      await sleep(120);
      expect(await storages[1]!.getOrSet('short', 'new', 50, Date.now())).toBe('new');
    } finally {
      await Promise.all([a.quit(), b.quit()]);
    }
  });
});

describe('FallbackRateLimitStorage getOrSet', () => {
  it('fails closed while the primary is down, whatever the policy (a local epoch would disagree)', async () => {
    const primary = new RedisRateLimitStorage({ url: 'redis://127.0.0.1:1' });
    const storage = new FallbackRateLimitStorage({ primary, policy: 'local', onError: () => undefined });
    try {
      await expect(storage.getOrSet('k', 'a', 60_000, T0)).rejects.toBeInstanceOf(RateLimitUnavailableError);
      // While marked down, no call goes to the primary, and none is answered locally either.
      await expect(storage.getOrSet('k', 'a', 60_000, T0)).rejects.toBeInstanceOf(RateLimitUnavailableError);
    } finally {
      await storage.close();
    }
  });

  it('says so when the primary has no getOrSet', async () => {
    const legacy: RateLimitStorage = {
      consume: (counters, now) => new InMemoryRateLimitStorage().consume(counters, now),
      increment: () => Promise.resolve(1),
      read: () => Promise.resolve(0),
      reset: () => Promise.resolve(),
    };
    const storage = new FallbackRateLimitStorage({ primary: legacy });
    await expect(storage.getOrSet('k', 'a', 1000, T0)).rejects.toThrow(/no getOrSet/);
  });
});

describe('describeMarkers', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });
  /** A Redis storage whose `CONFIG GET maxmemory-policy` answers `reply`. */
  const withConfig = (reply: () => Promise<unknown>) => {
    const client = new Redis(REDIS_URL, { lazyConnect: true });
    jest.spyOn(client, 'config').mockImplementation(reply as never);
    return new RedisRateLimitStorage({ client });
  };

  it('memory: per process, never evicts', async () => {
    expect(await new InMemoryRateLimitStorage().describeMarkers()).toMatchObject({ shared: false, mayEvict: false });
  });

  it('Redis: reads the real server policy (noeviction on the test server)', async () => {
    const policy = ((await redis.config('GET', 'maxmemory-policy')) as string[])[1];
    const report = await new RedisRateLimitStorage({ client: redis }).describeMarkers();
    expect(report).toEqual({ shared: true, mayEvict: policy !== 'noeviction', detail: `maxmemory-policy ${policy}` });
    // Through the fallback wrapper, the primary's report.
    const wrapped = new FallbackRateLimitStorage({ primary: new RedisRateLimitStorage({ client: redis }) });
    expect(await wrapped.describeMarkers()).toEqual(report);
  });

  it.each(['allkeys-lru', 'volatile-lru', 'allkeys-random', 'volatile-ttl'])(
    'Redis: %s may evict (volatile-* too: every key here has a TTL)',
    async (policy) => {
      const storage = withConfig(() => Promise.resolve(['maxmemory-policy', policy]));
      expect(await storage.describeMarkers()).toMatchObject({ shared: true, mayEvict: true });
    },
  );

  it('Redis: CONFIG disabled (managed Redis) or Redis unreachable is unknown, never an error', async () => {
    const disabled = withConfig(() => Promise.reject(new Error("ERR unknown command 'CONFIG'")));
    expect(await disabled.describeMarkers()).toMatchObject({
      mayEvict: undefined,
      detail: expect.stringMatching(/CONFIG/),
    });
    const down = new RedisRateLimitStorage({ url: 'redis://127.0.0.1:1' });
    try {
      expect(await down.describeMarkers()).toMatchObject({ shared: true, mayEvict: undefined });
    } finally {
      await down.close();
    }
  });

  it('Redis init() warns about an evicting policy, and about one it cannot read, but still starts', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const client = new Redis(REDIS_URL, { lazyConnect: true });
    try {
      const config = jest.spyOn(client, 'config');
      config.mockImplementation((() => Promise.resolve(['maxmemory-policy', 'allkeys-lru'])) as never);
      await new RedisRateLimitStorage({ client }).init();
      expect(warn).toHaveBeenLastCalledWith(expect.stringMatching(/maxmemory-policy allkeys-lru.*noeviction/));
      config.mockImplementation((() => Promise.reject(new Error('NOPERM'))) as never);
      await new RedisRateLimitStorage({ client }).init();
      expect(warn).toHaveBeenLastCalledWith(expect.stringMatching(/could not check the eviction policy.*NOPERM/));
      warn.mockClear();
      config.mockImplementation((() => Promise.resolve(['maxmemory-policy', 'noeviction'])) as never);
      await new RedisRateLimitStorage({ client }).init();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      await client.quit();
    }
  });
});
