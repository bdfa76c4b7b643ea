import { InMemoryRateLimitStorage } from './in-memory-rate-limit.storage.js';
import { rateLimitHeaders, retryAfterSeconds } from './rate-limit-headers.js';
import type { RateLimitCounterState, RateLimitDecision } from './rate-limit-storage.interface.js';

const state = (overrides: Partial<RateLimitCounterState>): RateLimitCounterState => ({
  key: 'k',
  limit: 10,
  windowMs: 60_000,
  remaining: 5,
  retryAfterMs: 0,
  resetMs: 30_000,
  ...overrides,
});

describe('rateLimitHeaders', () => {
  it('lists every policy and reports the one with the fewest requests left', () => {
    const decision: RateLimitDecision = {
      allowed: true,
      counters: [
        state({ limit: 10, windowMs: 900_000, remaining: 7, resetMs: 600_000 }),
        state({ limit: 5, windowMs: 3_600_000, remaining: 2, resetMs: 1_800_500 }),
      ],
    };
    expect(rateLimitHeaders(decision, ['per-address', 'per-email'])).toEqual({
      'RateLimit-Policy': '"per-address";q=10;w=900, "per-email";q=5;w=3600',
      RateLimit: '"per-email";r=2;t=1801',
    });
  });

  it('on refusal, reports the counter with the longest wait and sets Retry-After from it', () => {
    const decision: RateLimitDecision = {
      allowed: false,
      counters: [
        state({ remaining: 0, retryAfterMs: 1_200, resetMs: 50_000 }),
        state({ remaining: 3 }),
        state({ remaining: 0, retryAfterMs: 41_001, resetMs: 59_000 }),
      ],
    };
    const headers = rateLimitHeaders(decision, ['a', 'b', 'c']);
    expect(headers.RateLimit).toBe('"c";r=0;t=42');
    expect(headers['Retry-After']).toBe('42');
  });

  it('gives Retry-After only on refusal, at least 1 second', () => {
    const allowedButEmpty: RateLimitDecision = {
      allowed: true,
      counters: [state({ remaining: 0, retryAfterMs: 300, resetMs: 900 })],
    };
    const headers = rateLimitHeaders(allowedButEmpty, ['p']);
    expect(headers['Retry-After']).toBeUndefined();
    expect(headers.RateLimit).toBe('"p";r=0;t=1');
    const refused = rateLimitHeaders({ ...allowedButEmpty, allowed: false }, ['p']);
    expect(refused['Retry-After']).toBe('1');
  });

  it('rounds windows up to whole seconds, at least 1', () => {
    const decision: RateLimitDecision = {
      allowed: true,
      counters: [state({ windowMs: 500 }), state({ windowMs: 1_500 })],
    };
    expect(rateLimitHeaders(decision, ['x', 'y'])['RateLimit-Policy']).toBe('"x";q=10;w=1, "y";q=10;w=2');
  });

  it('escapes names as structured-field strings and refuses what cannot be one', () => {
    const decision: RateLimitDecision = { allowed: true, counters: [state({})] };
    expect(rateLimitHeaders(decision, ['a "quoted" \\ name'])['RateLimit-Policy']).toBe(
      '"a \\"quoted\\" \\\\ name";q=10;w=60',
    );
    expect(() => rateLimitHeaders(decision, ['naïve'])).toThrow(TypeError);
    expect(() => rateLimitHeaders(decision, ['line\nbreak'])).toThrow(TypeError);
  });

  it('describes a storage decision', async () => {
    const storage = new InMemoryRateLimitStorage();
    const counters = [
      { key: 'address', limit: 2, windowMs: 60_000 },
      { key: 'email', limit: 5, windowMs: 3_600_000 },
    ];
    const now = 1_700_000_040_000 + 15_000;
    await storage.consume(counters, now);
    await storage.consume(counters, now);
    const refused = await storage.consume(counters, now);
    expect(rateLimitHeaders(refused, ['address', 'email'])).toEqual({
      'RateLimit-Policy': '"address";q=2;w=60, "email";q=5;w=3600',
      RateLimit: '"address";r=0;t=46', // 45 s left in the window + 1 ms
      'Retry-After': '46',
    });
  });

  it('needs one name per counter', () => {
    const decision: RateLimitDecision = { allowed: true, counters: [state({}), state({})] };
    expect(() => rateLimitHeaders(decision, ['only-one'])).toThrow(RangeError);
    expect(() => rateLimitHeaders({ allowed: true, counters: [] }, [])).toThrow(RangeError);
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [0, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [59_999, 60],
  ])('%i ms → %i s', (ms, seconds) => {
    expect(retryAfterSeconds(ms)).toBe(seconds);
  });
});
