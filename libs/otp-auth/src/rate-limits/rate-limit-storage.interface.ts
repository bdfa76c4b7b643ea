/**
 * One counter to check and bump: at most `limit` events per `windowMs` under `key`.
 * Keys are opaque to the storage (the module hashes addresses before using them as keys).
 */
export interface RateLimitCounter {
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
}

/** The state of one counter after a {@link RateLimitStorage.consume} call. */
export interface RateLimitCounterState {
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
  /** Events still allowed in the current window after this call (never negative). */
  readonly remaining: number;
  /** Milliseconds until one more event would be allowed; 0 when `remaining > 0`. */
  readonly retryAfterMs: number;
  /** Milliseconds until the counter is back to its full allowance. */
  readonly resetMs: number;
}

/** The outcome of one {@link RateLimitStorage.consume} call. */
export interface RateLimitDecision {
  /** True when every counter had room; then every counter was bumped by one. */
  readonly allowed: boolean;
  /** One entry per counter given, in the same order. */
  readonly counters: readonly RateLimitCounterState[];
}

/** What {@link RateLimitStorage.describeMarkers} reports. */
export interface MarkerStorageReport {
  /** True when every instance sees the same markers (Redis); false for one process's memory. */
  readonly shared: boolean;
  /**
   * Whether live keys may be dropped to make room: false when never (memory, or Redis with
   * `maxmemory-policy noeviction`), true when they may, undefined when unknown (e.g. `CONFIG`
   * is disabled on a managed Redis, or Redis was unreachable).
   */
  readonly mayEvict: boolean | undefined;
  /** For logs: e.g. `maxmemory-policy allkeys-lru`, or why it could not be read. */
  readonly detail: string;
}

/**
 * Where rate-limit counters live: in memory for one instance, Redis for several.
 *
 * Semantics (every implementation, checked by the shared spec): a sliding window over
 * `windowMs`; `consume` is atomic across all counters given — either all have room and all are
 * bumped by one, or none is bumped and `allowed` is false. Refused calls are not counted, so a
 * client refused by its own per-IP counter does not use up the victim address's allowance.
 */
export interface RateLimitStorage {
  /**
   * Checks and bumps the counters as one atomic step.
   * @param now - The caller's clock in epoch milliseconds (the module's clock, so tests can move time).
   * @throws when the backing service cannot be reached; callers apply their failure policy.
   */
  consume(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision>;
  /**
   * An exact counter with a fixed lifetime, for markers that must not decay like a sliding
   * window (a used code, a resend cooldown): adds one to `key` atomically and returns the new
   * count; the key vanishes `ttlMs` after the call that created it. These markers carry
   * security decisions (a used code), so implementations must never drop a live one to make
   * room, and wrappers must not answer for them while the backing store is down.
   */
  increment(key: string, ttlMs: number, now: number): Promise<number>;
  /** The current count of an {@link increment} key: 0 when absent or expired. */
  read(key: string, now: number): Promise<number>;
  /**
   * A value every instance agrees on (stateless mode's per-address epoch): the live value under
   * `key`, or else `value`, stored by this call. Set-if-absent in one atomic step, so concurrent
   * callers all get the first value stored. Either way the key then lives at least `ttlMs` more
   * (extended, never shortened). Like {@link increment} markers: never dropped live, and wrappers
   * fail closed while the backing store is down. Stateless mode refuses to start without it.
   */
  getOrSet?(key: string, value: string, ttlMs: number, now: number): Promise<string>;
  /**
   * What this storage guarantees about its markers, checked at startup in stateless mode (which
   * refuses an evicting Redis and, on several instances, memory). Never throws: an unknown is
   * reported as such.
   */
  describeMarkers?(): Promise<MarkerStorageReport>;
  /** Removes counters (e.g. an address's failure counter after a successful sign-in). */
  reset(keys: readonly string[]): Promise<void>;
  /**
   * Connects ahead of the first request; called at module startup. A failure is logged and the
   * failure policy applies, so an unreachable Redis does not stop the app from starting.
   */
  init?(): Promise<void>;
  /** Releases connections and timers; called on module shutdown. */
  close?(): Promise<void>;
}

/** Injection token of the active {@link RateLimitStorage}. */
export const OTP_RATE_LIMIT_STORAGE = Symbol('OTP_RATE_LIMIT_STORAGE');
