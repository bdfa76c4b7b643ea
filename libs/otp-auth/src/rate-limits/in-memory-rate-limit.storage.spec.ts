import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_MAX_RATE_LIMIT_KEYS, InMemoryRateLimitStorage } from './in-memory-rate-limit.storage.js';
import type { RateLimitCounter } from './rate-limit-storage.interface.js';

// Core semantics are in rate-limit-storage.contract.spec.ts; this file covers the memory bound.

const T0 = 1_700_000_040_000;
const MINUTE = 60_000;
const counter = (key: string, limit = 1, windowMs = MINUTE): RateLimitCounter => ({ key, limit, windowMs });

// A full GC before each heap reading, so the bound measures what is retained, not what awaits
// collection. The flag can be turned on at runtime; a fresh context then sees `gc`.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('InMemoryRateLimitStorage memory bound', () => {
  it('keeps 1,000,000 distinct keys at maxKeys, with bounded heap growth', async () => {
    const storage = new InMemoryRateLimitStorage();
    // Warm up so the measurement excludes JIT and the map's first growth.
    for (let i = 0; i < DEFAULT_MAX_RATE_LIMIT_KEYS; i++) storage.consumeSync([counter(`warm:${i}`)], T0);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();

    for (let i = 0; i < 1_000_000; i++) {
      await storage.consume([counter(`flood:${i}`)], T0 + (i >>> 10)); // time moves, but nothing expires
      if (storage.size > DEFAULT_MAX_RATE_LIMIT_KEYS) throw new Error(`size ${storage.size} at ${i}`);
    }

    const seconds = (performance.now() - started) / 1000;
    gc();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    expect(storage.size).toBe(DEFAULT_MAX_RATE_LIMIT_KEYS);
    // Keeping all 1M entries would retain ~160 MB or more.
    expect(growth).toBeLessThan(32 * 1024 * 1024);
    // ~1 s in plain Node, ~3 s under Jest; an eviction that is O(n) per insert takes about a minute.
    expect(seconds).toBeLessThan(30);
    // The latest keys survive, the oldest were evicted.
    expect((await storage.consume([counter('flood:999999')], T0 + 1000)).allowed).toBe(false);
    expect((await storage.consume([counter('warm:0')], T0 + 1000)).allowed).toBe(true);
  }, 60_000);

  it('evicts the least recently used counter, refused calls counting as use', () => {
    const storage = new InMemoryRateLimitStorage({ maxKeys: 3 });
    for (const key of ['a', 'b', 'c']) storage.consumeSync([counter(key)], T0);
    // 'a' is full and the attacker keeps hitting it: that keeps it.
    expect(storage.consumeSync([counter('a')], T0).allowed).toBe(false);
    storage.consumeSync([counter('d')], T0); // evicts 'b', the least recently used
    expect(storage.size).toBe(3);
    expect(storage.consumeSync([counter('a')], T0).allowed).toBe(false);
    expect(storage.consumeSync([counter('c')], T0).allowed).toBe(false);
    expect(storage.consumeSync([counter('b')], T0).allowed).toBe(true); // forgotten
  });

  it('drops expired counters before evicting live ones', () => {
    const storage = new InMemoryRateLimitStorage({ maxKeys: 3 });
    storage.consumeSync([counter('long', 1, 60 * MINUTE)], T0);
    storage.consumeSync([counter('short1', 1, 1000)], T0);
    storage.consumeSync([counter('short2', 1, 1000)], T0);
    // 'long' is the least recently used, but the short ones have decayed by then.
    storage.consumeSync([counter('new')], T0 + 5000);
    expect(storage.size).toBe(2);
    expect(storage.consumeSync([counter('long', 1, 60 * MINUTE)], T0 + 5000).allowed).toBe(false);
  });

  it('does not create counters for a refused call', () => {
    const storage = new InMemoryRateLimitStorage({ maxKeys: 10 });
    storage.consumeSync([counter('address')], T0);
    for (let i = 0; i < 100; i++) {
      expect(storage.consumeSync([counter('address'), counter(`email:${i}`)], T0).allowed).toBe(false);
    }
    expect(storage.size).toBe(1);
  });

  it('stays consistent when a call names the same new key twice', () => {
    const storage = new InMemoryRateLimitStorage({ maxKeys: 2 });
    expect(storage.consumeSync([counter('twice', 5), counter('twice', 5)], T0).counters[1]!.remaining).toBe(3);
    for (let i = 0; i < 10; i++) storage.consumeSync([counter(`other${i}`)], T0);
    expect(storage.size).toBe(2);
  });

  it('rejects an invalid maxKeys', () => {
    expect(() => new InMemoryRateLimitStorage({ maxKeys: 0 })).toThrow(RangeError);
  });
});
