import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RateLimitCounter, RateLimitStorage } from './rate-limit-storage.interface.js';

/** @nestjs/throttler's `ThrottlerStorageRecord`, which its package index does not export. */
export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** Settings of {@link RateLimitThrottlerStorage}. */
export interface RateLimitThrottlerStorageOptions {
  /** Prepended to @nestjs/throttler's keys, apart from the module's own counters. Default `'throttler:'`. */
  keyPrefix?: string;
  /** Clock in epoch ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * Lets `@nestjs/throttler` (6.x) count in a {@link RateLimitStorage}, so an app's own routes are
 * limited in the same Redis (or memory) as the OTP endpoints, with the same sliding window:
 *
 * ```ts
 * ThrottlerModule.forRoot({
 *   throttlers: [{ ttl: 60_000, limit: 30 }],
 *   storage: new RateLimitThrottlerStorage(new RedisRateLimitStorage({ client: redis })),
 * })
 * ```
 *
 * Mapping: `ttl` is the window and `limit` the limit. A refused request is not counted, and is
 * reported blocked until the sliding window has room again (`timeToBlockExpire`, the guard's
 * `Retry-After`). `blockDuration` is not applied: the sliding window decides when the next
 * request fits, which for the default `blockDuration` (= `ttl`) is never later. Wrap the storage
 * in a `FallbackRateLimitStorage` to choose what happens while Redis is down (a
 * `RateLimitUnavailableError` under `'fail-closed'` surfaces from the guard as an error).
 */
export class RateLimitThrottlerStorage implements ThrottlerStorage {
  private readonly keyPrefix: string;
  private readonly now: () => number;

  constructor(
    private readonly storage: RateLimitStorage,
    options: RateLimitThrottlerStorageOptions = {},
  ) {
    this.keyPrefix = options.keyPrefix ?? 'throttler:';
    this.now = options.now ?? Date.now;
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    _throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    // The guard's key already includes the throttler name.
    const counter: RateLimitCounter = { key: this.keyPrefix + key, limit, windowMs: ttl };
    const decision = await this.storage.consume([counter], this.now());
    const state = decision.counters[0]!;
    return {
      // Hits in the (weighted) window; one over the limit when refused, so the guard's
      // X-RateLimit-Remaining shows 0.
      totalHits: decision.allowed ? limit - state.remaining : limit + 1,
      timeToExpire: Math.ceil(state.resetMs / 1000),
      isBlocked: !decision.allowed,
      timeToBlockExpire: decision.allowed ? 0 : Math.max(1, Math.ceil(state.retryAfterMs / 1000)),
    };
  }
}
