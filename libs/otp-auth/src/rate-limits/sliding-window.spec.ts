import type { RateLimitCounter } from './rate-limit-storage.interface.js';
import { assertValidCounter, counterState, hasRoom, windowIndexAt } from './sliding-window.js';

/** A counter's stored state, rolled forward the way the storages do. */
interface State {
  index: number;
  previous: number;
  current: number;
}

function rolled(state: State, now: number, windowMs: number): State {
  const index = windowIndexAt(now, windowMs);
  if (index <= state.index) return state;
  return { index, previous: index === state.index + 1 ? state.current : 0, current: 0 };
}

function fitsAt(state: State, counter: RateLimitCounter, now: number): boolean {
  const s = rolled(state, now, counter.windowMs);
  return hasRoom(counter.limit, counter.windowMs, now - s.index * counter.windowMs, s.previous, s.current);
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('sliding-window counter', () => {
  const counter: RateLimitCounter = { key: 'k', limit: 10, windowMs: 1000 };

  it('weights the previous window by its overlap', () => {
    // 10 events in window 0; at t = 1000 the previous window still counts in full.
    expect(hasRoom(10, 1000, 0, 10, 0)).toBe(false);
    // At 10% into window 1, the previous one weighs 9: one more event fits, a second does not.
    expect(hasRoom(10, 1000, 100, 10, 0)).toBe(true);
    expect(hasRoom(10, 1000, 100, 10, 1)).toBe(false);
    expect(counterState(counter, 1100, 1, 10, 0)).toEqual({
      key: 'k',
      limit: 10,
      windowMs: 1000,
      remaining: 1,
      retryAfterMs: 0,
      resetMs: 801, // until the 10 previous weigh less than 1
    });
  });

  it('reports the exact wait until one more event fits', () => {
    // 10 in window 0 and 1 already in window 1: the weighted count drops below 10 at 10.1%.
    expect(counterState(counter, 1000, 1, 10, 1).retryAfterMs).toBe(101);
    expect(counterState(counter, 1040, 1, 10, 1).retryAfterMs).toBe(61);
    // A full previous window alone weighs 10 only at the boundary: 1 ms later 9.99 < 10.
    expect(counterState(counter, 1000, 1, 10, 0).retryAfterMs).toBe(1);
    // Window full on its own: wait for the next window (+1 ms, as above).
    expect(counterState(counter, 500, 0, 0, 10)).toMatchObject({ remaining: 0, retryAfterMs: 501, resetMs: 1401 });
    // The limit was lowered below the count: 20 previous must decay under 10, i.e. to half.
    expect(counterState(counter, 1000, 1, 20, 0).retryAfterMs).toBe(501);
    expect(counterState(counter, 0, 0, 0, 20).retryAfterMs).toBe(1501);
  });

  it('matches a brute-force search for retryAfterMs, remaining and resetMs', () => {
    const next = random(42);
    for (let run = 0; run < 3000; run++) {
      const windowMs = 1 + Math.floor(next() * 60);
      const limit = 1 + Math.floor(next() * 8);
      const c: RateLimitCounter = { key: 'k', limit, windowMs };
      const index = 5 + Math.floor(next() * 3);
      const now = index * windowMs + Math.floor(next() * windowMs);
      const state: State = {
        index,
        previous: Math.floor(next() * (limit + 3)), // above the limit too: a limit lowered since
        current: Math.floor(next() * (limit + 3)),
      };
      const reported = counterState(c, now, state.index, state.previous, state.current);

      let remaining = 0;
      for (let extra = { ...state }; fitsAt(extra, c, now); extra = { ...extra, current: extra.current + 1 })
        remaining++;
      expect(reported.remaining).toBe(remaining);

      let wait = 0;
      while (!fitsAt(state, c, now + wait)) wait++;
      expect(reported.retryAfterMs).toBe(remaining > 0 ? 0 : wait);

      // Back to full: `limit` events fit again.
      let reset = 0;
      const full = (t: number) => {
        const s = rolled(state, t, windowMs);
        return counterState(c, t, s.index, s.previous, s.current).remaining === limit;
      };
      while (!full(now + reset)) reset++;
      expect(reported.resetMs).toBe(reset);
    }
  });

  it('treats a caller whose clock lags the stored window as at its start', () => {
    // Stored in window 3; the caller thinks it is 200 ms before that window began.
    const state = counterState(counter, 2800, 3, 10, 0);
    expect(state.remaining).toBe(0);
    expect(state.retryAfterMs).toBe(201); // 200 ms of lag + 1 ms into window 3
    expect(hasRoom(10, 1000, -200, 9, 0)).toBe(true);
    expect(hasRoom(10, 1000, -200, 10, 0)).toBe(false);
  });

  it('never lets more than `limit` into one fixed window, nor 2 × limit into any span of windowMs', () => {
    const limit = 5;
    const windowMs = 100;
    let state: State = { index: 0, previous: 0, current: 0 };
    const accepted: number[] = [];
    // A greedy client trying every millisecond for 30 windows.
    for (let now = 0; now < 30 * windowMs; now++) {
      state = rolled(state, now, windowMs);
      if (hasRoom(limit, windowMs, now - state.index * windowMs, state.previous, state.current)) {
        state = { ...state, current: state.current + 1 };
        accepted.push(now);
      }
    }
    for (let w = 0; w < 30; w++) {
      expect(accepted.filter((t) => Math.floor(t / windowMs) === w).length).toBeLessThanOrEqual(limit);
    }
    for (const start of accepted) {
      expect(accepted.filter((t) => t >= start && t < start + windowMs).length).toBeLessThanOrEqual(2 * limit);
    }
    // A greedy client gets exactly `limit` per window.
    expect(accepted.length).toBe(30 * limit);
  });

  it.each([
    [{ key: 'k', limit: 0, windowMs: 1000 }],
    [{ key: 'k', limit: 1.5, windowMs: 1000 }],
    [{ key: 'k', limit: 10, windowMs: 0 }],
    [{ key: 'k', limit: 10, windowMs: Number.NaN }],
    [{ key: 'k', limit: 2 ** 40, windowMs: 2 ** 20 }],
  ])('rejects an invalid counter %j', (bad) => {
    expect(() => assertValidCounter(bad)).toThrow(RangeError);
  });
});
