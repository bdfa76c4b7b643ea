// The semantics every RateLimitStorage must have, written once and run against each of them:
// in memory, Redis (real server), and Redis behind the fallback wrapper. A single spec file
// rather than an exported helper, because tsconfig.lib.json only leaves `*.spec.ts` out of the
// published build.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisRateLimitStorage } from '../redis/redis-rate-limit.storage.js';
import { FallbackRateLimitStorage } from './fallback-rate-limit.storage.js';
import { InMemoryRateLimitStorage } from './in-memory-rate-limit.storage.js';
import type { RateLimitCounter, RateLimitStorage } from './rate-limit-storage.interface.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const PREFIX = `otp:rl:test:${randomUUID()}:`;
/** A window boundary for both 1 s and 60 s windows. */
const T0 = 1_700_000_040_000;
const SECOND = 1000;

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
        policy: 'fail-closed', // so a silent fallback could not make these tests pass
      }),
  ],
];

describe.each(factories)('%s (shared contract)', (_name, create) => {
  let storage: RateLimitStorage;
  let next = 0;
  /** A counter with a key no other test uses. */
  const counter = (limit: number, windowMs = SECOND): RateLimitCounter => ({
    key: `k${next++}`,
    limit,
    windowMs,
  });

  beforeEach(() => {
    storage = create();
  });

  afterEach(async () => {
    await storage.close?.();
  });

  describe('increment (exact markers with a fixed lifetime)', () => {
    it('counts up, keeps its lifetime from the first call, then starts again', async () => {
      const key = `m${next++}`;
      expect(await storage.increment(key, 10 * SECOND, T0)).toBe(1);
      expect(await storage.increment(key, 10 * SECOND, T0 + 9 * SECOND)).toBe(2);
      // Redis expires by its own clock; only the in-memory storage can be moved in time.
      if (storage instanceof InMemoryRateLimitStorage) {
        expect(await storage.increment(key, 10 * SECOND, T0 + 10 * SECOND)).toBe(1);
      }
      await storage.reset([key]);
      expect(await storage.increment(key, 10 * SECOND, T0)).toBe(1);
    });

    it('gives 100 parallel calls the numbers 1 to 100, each once', async () => {
      const key = `m${next++}`;
      const counts = await Promise.all(Array.from({ length: 100 }, () => storage.increment(key, 60 * SECOND, T0)));
      expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    });
  });

  it('allows up to the limit, then refuses with the exact wait', async () => {
    const c = counter(3);
    const now = T0 + 200;
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const decision = await storage.consume([c], now);
      expect(decision.allowed).toBe(true);
      expect(decision.counters[0]!.retryAfterMs).toBe(i < 2 ? 0 : 801);
      remaining.push(decision.counters[0]!.remaining);
    }
    expect(remaining).toEqual([2, 1, 0]);

    const refused = await storage.consume([c], now);
    expect(refused.allowed).toBe(false);
    // Full window: room 1 ms into the next one (3 × 999/1000 < 3); full allowance once 3 weigh < 1.
    expect(refused.counters).toEqual([
      { key: c.key, limit: 3, windowMs: SECOND, remaining: 0, retryAfterMs: 801, resetMs: 1467 },
    ]);
    expect((await storage.consume([c], now + 800)).allowed).toBe(false);
    expect((await storage.consume([c], now + 801)).allowed).toBe(true);
  });

  it('does not count refused calls', async () => {
    const c = counter(2);
    for (let i = 0; i < 6; i++) await storage.consume([c], T0);
    // Had the 4 refusals counted, 6 previous would weigh 3 at mid-window.
    const decision = await storage.consume([c], T0 + 1500);
    expect(decision.allowed).toBe(true);
    expect(decision.counters[0]!.remaining).toBe(0); // 2 × 0.5 + 1
  });

  it('slides: the previous window counts by how much of it the window still overlaps', async () => {
    const c = counter(10);
    for (let i = 0; i < 10; i++) expect((await storage.consume([c], T0)).allowed).toBe(true);

    const atBoundary = await storage.consume([c], T0 + 1000);
    expect(atBoundary.allowed).toBe(false);
    expect(atBoundary.counters[0]!.retryAfterMs).toBe(1);

    // 10% into the next window the previous one weighs 9: one more fits, and it is the last.
    const tenth = await storage.consume([c], T0 + 1100);
    expect(tenth.allowed).toBe(true);
    expect(tenth.counters[0]!.remaining).toBe(0);
    expect(tenth.counters[0]!.retryAfterMs).toBe(1);
    expect((await storage.consume([c], T0 + 1100)).allowed).toBe(false);
    expect((await storage.consume([c], T0 + 1101)).allowed).toBe(true);

    // Half-way: 5 + 2 counted, 3 left after this one.
    const half = await storage.consume([c], T0 + 1500);
    expect(half.counters[0]!.remaining).toBe(2);
  });

  it('reports retryAfterMs and resetMs exactly', async () => {
    const limit = 5;
    const history = [100, 300, 500, 700, 900, 1050].map((t) => T0 + t);
    const now = T0 + 1050;
    // The same history on three keys, so probing one does not disturb the others.
    const [a, b, c] = [counter(limit), counter(limit), counter(limit)];
    for (const t of history) for (const k of [a, b, c]) await storage.consume([k], t);

    const refused = await storage.consume([a], now);
    expect(refused.allowed).toBe(false);
    const { retryAfterMs: wait, resetMs: reset } = refused.counters[0]!;
    expect(wait).toBe(151); // 5 previous + 1 weigh < 5 once 201 ms into the window
    expect((await storage.consume([a], now + wait - 1)).allowed).toBe(false);
    expect((await storage.consume([a], now + wait)).allowed).toBe(true);

    // Just before the reset the full allowance is not back; at the reset it is.
    expect(reset).toBeGreaterThan(wait);
    expect((await storage.consume([b], now + reset - 1)).counters[0]!.remaining).toBeLessThan(limit - 1);
    expect((await storage.consume([c], now + reset)).counters[0]!.remaining).toBe(limit - 1);
  });

  it('is all or nothing across counters, and reports them in order', async () => {
    const perAddress = counter(1);
    const perEmail = counter(5, 60 * SECOND);
    const fresh = counter(3);
    expect((await storage.consume([perAddress], T0)).allowed).toBe(true);

    const refused = await storage.consume([perEmail, perAddress, fresh], T0);
    expect(refused.allowed).toBe(false);
    expect(refused.counters.map((s) => [s.key, s.remaining])).toEqual([
      [perEmail.key, 5],
      [perAddress.key, 0],
      [fresh.key, 3],
    ]);
    expect(refused.counters[1]!.retryAfterMs).toBeGreaterThan(0);
    // Neither of the others was bumped.
    expect((await storage.consume([perEmail], T0)).counters[0]!.remaining).toBe(4);
    expect((await storage.consume([fresh], T0)).counters[0]!.remaining).toBe(2);

    const both = await storage.consume([perEmail, fresh], T0);
    expect(both.allowed).toBe(true);
    expect(both.counters.map((s) => s.remaining)).toEqual([3, 1]);
  });

  it('keeps keys independent', async () => {
    const a = counter(1);
    const b = counter(1);
    expect((await storage.consume([a], T0)).allowed).toBe(true);
    expect((await storage.consume([a], T0)).allowed).toBe(false);
    expect((await storage.consume([b], T0)).allowed).toBe(true);
  });

  it('reset gives the full allowance back to the keys given, and only to them', async () => {
    const a = counter(1, 60 * SECOND);
    const b = counter(1, 60 * SECOND);
    await storage.consume([a, b], T0);
    await storage.reset([a.key, 'never-used']);
    await storage.reset([]);
    expect((await storage.consume([a], T0)).allowed).toBe(true);
    expect((await storage.consume([b], T0)).allowed).toBe(false);
  });

  it('counts a caller whose clock lags the stored window against that window', async () => {
    const c = counter(2);
    await storage.consume([c], T0 + 1500);
    await storage.consume([c], T0 + 1500);
    // Another instance, 700 ms behind, still in window 0 by its clock.
    const lagging = await storage.consume([c], T0 + 800);
    expect(lagging.allowed).toBe(false);
    expect(lagging.counters[0]!.retryAfterMs).toBe(1201); // 200 ms of lag + 1001 ms
  });

  it('starts a counter afresh when its window is reconfigured', async () => {
    const c = counter(1);
    await storage.consume([c], T0);
    expect((await storage.consume([c], T0)).allowed).toBe(false);
    expect((await storage.consume([{ ...c, windowMs: 60 * SECOND }], T0)).allowed).toBe(true);
  });

  it('allows a call with no counters', async () => {
    expect(await storage.consume([], T0)).toEqual({ allowed: true, counters: [] });
  });

  it.each([
    { limit: 0, windowMs: SECOND },
    { limit: 2.5, windowMs: SECOND },
    { limit: 1, windowMs: -1 },
  ])('rejects an invalid counter %j with a RangeError', async (bad) => {
    await expect(storage.consume([{ key: `bad${next++}`, ...bad }], T0)).rejects.toThrow(RangeError);
  });
});
