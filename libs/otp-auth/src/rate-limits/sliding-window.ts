import type { RateLimitCounter, RateLimitCounterState } from './rate-limit-storage.interface.js';

/**
 * The sliding-window counter shared by every storage (in memory, and mirrored line for line by
 * the Redis Lua script), so all of them decide alike.
 *
 * Algorithm: time is cut into fixed windows of `windowMs` aligned on the epoch
 * (`index = floor(now / windowMs)`); a counter keeps only the event counts of the current window
 * and of the one before it, i.e. O(1) memory per key whatever the limit. The number of events
 * "in the last `windowMs`" is estimated by weighting the previous window by how much of it the
 * sliding window still overlaps:
 *
 * ```text
 * weighted = previous × (windowMs − elapsed) / windowMs + current      (elapsed = now − window start)
 * ```
 *
 * An event is allowed while the weighted count is below the limit (`weighted < limit`), computed
 * in integers scaled by `windowMs` (`previous × (windowMs − elapsed) + current × windowMs <
 * limit × windowMs`), so JavaScript and Lua take bit-identical decisions with no rounding drift.
 * A client pacing itself at exactly `limit` per `windowMs` is always let through.
 *
 * Approximation: the estimate assumes the previous window's events were spread evenly. It never
 * lets more than `limit` events into one fixed window, so the long-run rate is at most `limit` per
 * `windowMs`; but a client that bursts at the very end of one window and keeps pushing through the
 * next can get up to `2 × limit` events into one sliding span of `windowMs` (the worst case of a
 * plain fixed window too, which reaches it far more easily), and with tiny limits the weighting is
 * coarse (limit 1: the next event may come just after the next window starts). For traffic not
 * timed against the window edges it stays close to an exact sliding log, which would cost memory
 * per event instead of two integers per key.
 *
 * Clock skew: `now` comes from the caller. If a stored counter is already in a later window than
 * `now` (an instance whose clock lags the others), the stored window is used and `now` is treated
 * as its start, i.e. the previous window counts in full: the conservative choice.
 */

/** Largest value the integer arithmetic handles exactly (2^53 − 1). */
const MAX_EXACT = Number.MAX_SAFE_INTEGER;

/**
 * Throws a `RangeError` unless `limit` and `windowMs` are positive integers whose product (the
 * scale of the integer arithmetic) stays exact in a double. Storages call it before touching
 * any counter; wrappers treat a `RangeError` as a programming error, not an outage.
 */
export function assertValidCounter(counter: RateLimitCounter): void {
  const { limit, windowMs } = counter;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`rate limit "${counter.key}": limit must be a positive integer, got ${limit}`);
  }
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
    throw new RangeError(`rate limit "${counter.key}": windowMs must be a positive integer, got ${windowMs}`);
  }
  // Counts stay around `limit`, so 2 × limit × windowMs bounds every product computed here.
  if (limit * windowMs * 2 > MAX_EXACT) {
    throw new RangeError(`rate limit "${counter.key}": limit × windowMs is too large to count exactly`);
  }
}

/** Throws a `RangeError` unless `now` is a finite, non-negative epoch time in milliseconds. */
export function assertValidNow(now: number): void {
  if (!Number.isFinite(now) || now < 0) throw new RangeError(`rate limit: now must be epoch milliseconds, got ${now}`);
}

/** Index of the fixed window of `windowMs` containing `now`. */
export function windowIndexAt(now: number, windowMs: number): number {
  return Math.floor(now / windowMs);
}

/**
 * Whether one more event fits: the weighted count is below `limit`. `elapsed` is `now` − start of
 * the window `current` belongs to (≤ 0 when the caller's clock lags the stored window: the
 * previous window then counts in full).
 */
export function hasRoom(limit: number, windowMs: number, elapsed: number, previous: number, current: number): boolean {
  const overlap = elapsed > 0 ? windowMs - elapsed : windowMs;
  return previous * overlap + current * windowMs < limit * windowMs;
}

/**
 * The state reported for one counter: `previous` and `current` are its counts after the call
 * (bumped if the call was allowed), `windowIndex` the fixed window `current` belongs to.
 *
 * - `remaining`: how many more events fit right now, `ceil(limit − weighted)`.
 * - `retryAfterMs`: exact time until the weighted count drops below the limit, i.e. one more event
 *   fits (0 when `remaining > 0`, otherwise at least 1), assuming nothing else is counted meanwhile.
 * - `resetMs`: exact time until the full allowance is back (`remaining = limit`, i.e. the weighted
 *   count is below 1): just after the next window starts when the current one has a single event,
 *   up to the end of the next window for a full one.
 */
export function counterState(
  counter: RateLimitCounter,
  now: number,
  windowIndex: number,
  previous: number,
  current: number,
): RateLimitCounterState {
  const { key, limit, windowMs } = counter;
  // May be negative when the caller's clock lags the stored window: durations then include the lag.
  const elapsed = now - windowIndex * windowMs;
  const overlap = elapsed > 0 ? windowMs - elapsed : windowMs;
  const free = limit * windowMs - previous * overlap - current * windowMs;
  const remaining = free > 0 ? Math.ceil(free / windowMs) : 0;
  return {
    key,
    limit,
    windowMs,
    remaining,
    retryAfterMs: remaining > 0 ? 0 : retryAfter(limit, windowMs, elapsed, previous, current),
    // Full allowance = room for one event under a limit of 1: the same computation.
    resetMs: remaining === limit ? 0 : retryAfter(1, windowMs, elapsed, previous, current),
  };
}

/** Time until one more event fits, for a counter that has no room now. */
function retryAfter(limit: number, windowMs: number, elapsed: number, previous: number, current: number): number {
  // Still in this window: room once previous × (windowMs − t) < (limit − current) × windowMs,
  // i.e. at the first whole millisecond t > windowMs − (limit − current) × windowMs / previous.
  if (current < limit && previous > 0) {
    const at = windowMs - Math.ceil(((limit - current) * windowMs) / previous) + 1;
    if (at < windowMs) return at - elapsed;
  }
  // Next window: `current` becomes the previous count and decays from its start:
  // current × (windowMs − t) < limit × windowMs (at once when current < limit).
  const at = current > 0 ? Math.max(0, windowMs - Math.ceil((limit * windowMs) / current) + 1) : 0;
  return windowMs - elapsed + at;
}
