import { InMemoryRateLimitStorage, type InMemoryRateLimitStorageOptions } from './in-memory-rate-limit.storage.js';

export { RateLimitUnavailableError };
import type {
  MarkerStorageReport,
  RateLimitCounter,
  RateLimitCounterState,
  RateLimitDecision,
  RateLimitStorage,
} from './rate-limit-storage.interface.js';
import { RateLimitStorageTimeoutError, RateLimitUnavailableError } from '../errors.js';

/**
 * What {@link FallbackRateLimitStorage} does while its primary storage is unreachable:
 *
 * - `'local'`: count in this instance's memory instead, so every limit still holds per instance
 *   (with N instances a client gets at most N times the allowance, and counters start empty).
 * - `'fail-closed'`: refuse by throwing {@link RateLimitUnavailableError}, which the HTTP layer
 *   turns into 503 + Retry-After. Safest, but Redis becomes a hard dependency of sign-in.
 * - `'fail-open'`: allow everything, unlimited. Only when availability beats brute-force protection.
 */
export type RateLimitFailurePolicy = 'local' | 'fail-closed' | 'fail-open';

/** What {@link FallbackRateLimitStorageOptions.onError} is told besides the error. */
export interface RateLimitStorageErrorInfo {
  /** The operation that failed. */
  readonly operation: 'init' | 'consume' | 'reset';
  /** The policy applied. */
  readonly policy: RateLimitFailurePolicy;
  /** Errors not reported since the previous call (reports are rate-limited). */
  readonly suppressed: number;
}

/** Settings of {@link FallbackRateLimitStorage}. */
export interface FallbackRateLimitStorageOptions {
  /** The shared storage, normally a `RedisRateLimitStorage`. */
  primary: RateLimitStorage;
  /** Default `'local'`. */
  policy?: RateLimitFailurePolicy;
  /**
   * Longest wait for the primary per call, in ms, after which the call counts as failed. Default
   * 250. Set the client to fail fast as well (see `RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS`): this
   * timeout is the backstop for a server that accepts connections but never answers.
   */
  timeoutMs?: number;
  /**
   * After a failure, calls skip the primary for this long (ms) before one call probes it again;
   * meanwhile they get the policy's answer without waiting. Default 1000.
   */
  probeIntervalMs?: number;
  /** The storage used by the `'local'` policy, or its settings. Default: a fresh in-memory one. */
  local?: RateLimitStorage | InMemoryRateLimitStorageOptions;
  /**
   * Called on primary failures, for logs and metrics: at once for the first, then at most once per
   * `errorReportIntervalMs` with the number of errors swallowed meanwhile, so a Redis outage
   * cannot flood the logs. Exceptions it throws are ignored.
   */
  onError?: (error: unknown, info: RateLimitStorageErrorInfo) => void;
  /** Default 10 000 ms. */
  errorReportIntervalMs?: number;
  /** Called when the primary answers again after a failure. */
  onRecover?: () => void;
}

/**
 * Wraps the shared storage (Redis) with a policy for when it is unreachable, so an outage costs
 * requests at most `timeoutMs` once per `probeIntervalMs` (and usually a few ms, with a
 * fail-fast client) instead of hanging them.
 *
 * A small circuit breaker: the first failure (error or timeout) switches to the policy; calls
 * then skip the primary until `probeIntervalMs` has passed, when a single call probes it (the
 * others keep using the policy meanwhile). When it answers, every call goes to it again. Under
 * `'local'` the in-memory counters are kept across recoveries, so a flapping Redis does not
 * hand out fresh allowances each time.
 *
 * A `RangeError` (an invalid counter, a programming error) is re-thrown, never treated as an
 * outage. A call that timed out may still be counted by Redis later; it is also counted locally,
 * which only errs on the strict side.
 *
 * `reset` goes to both the primary and the local storage; a primary failure there is reported
 * and swallowed whatever the policy, since failing a successful sign-in because a counter could
 * not be cleared would be worse than the counter expiring on its own.
 */
export class FallbackRateLimitStorage implements RateLimitStorage {
  private readonly primary: RateLimitStorage;
  private readonly policy: RateLimitFailurePolicy;
  private readonly timeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly local: RateLimitStorage | undefined;
  private readonly errorReportIntervalMs: number;
  private readonly onError: FallbackRateLimitStorageOptions['onError'];
  private readonly onRecover: FallbackRateLimitStorageOptions['onRecover'];
  /** Monotonic time (ms) before which calls skip the primary; 0 while it is healthy. */
  private downUntil = 0;
  private probing = false;
  private lastReportAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(options: FallbackRateLimitStorageOptions) {
    this.primary = options.primary;
    this.policy = options.policy ?? 'local';
    this.timeoutMs = options.timeoutMs ?? 250;
    this.probeIntervalMs = options.probeIntervalMs ?? 1000;
    this.errorReportIntervalMs = options.errorReportIntervalMs ?? 10_000;
    this.onError = options.onError;
    this.onRecover = options.onRecover;
    if (this.policy === 'local') {
      const local = options.local;
      this.local = local && 'consume' in local ? local : new InMemoryRateLimitStorage(local);
    } else if (options.local && 'consume' in options.local) {
      this.local = options.local; // kept only so `reset`/`close` reach it
    }
  }

  /** True while the primary is considered down and the policy applies. */
  get degraded(): boolean {
    return this.downUntil !== 0;
  }

  /**
   * Initialises the local storage and the primary (e.g. connects to Redis). If the primary fails,
   * the policy applies from the first request instead of after a failed attempt, and the error
   * is reported and re-thrown for the caller to log.
   */
  async init(): Promise<void> {
    await this.local?.init?.();
    try {
      await this.primary.init?.();
    } catch (error) {
      this.markDown(error, 'init');
      throw error;
    }
  }

  async consume(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision> {
    let probe = false;
    if (this.downUntil !== 0) {
      // Down: one caller at a time probes once the interval has passed, the others do not wait.
      if (this.probing || performance.now() < this.downUntil) return this.whileDown(counters, now);
      this.probing = probe = true;
    }
    try {
      const decision = await withTimeout(this.primary.consume(counters, now), this.timeoutMs);
      this.markUp();
      return decision;
    } catch (error) {
      if (error instanceof RangeError) throw error;
      this.markDown(error, 'consume');
      return this.whileDown(counters, now);
    } finally {
      if (probe) this.probing = false;
    }
  }

  async increment(key: string, ttlMs: number, now: number): Promise<number> {
    let probe = false;
    if (this.downUntil !== 0) {
      if (this.probing || performance.now() < this.downUntil) return this.incrementWhileDown();
      this.probing = probe = true;
    }
    try {
      const count = await withTimeout(this.primary.increment(key, ttlMs, now), this.timeoutMs);
      this.markUp();
      return count;
    } catch (error) {
      if (error instanceof RangeError) throw error;
      this.markDown(error, 'consume');
      return this.incrementWhileDown();
    } finally {
      if (probe) this.probing = false;
    }
  }

  /** The primary's: markers never go to the local storage. */
  describeMarkers(): Promise<MarkerStorageReport> {
    const detail = 'a primary storage that does not describe its markers';
    return this.primary.describeMarkers?.() ?? Promise.resolve({ shared: true, mayEvict: undefined, detail });
  }

  /** Fails closed like {@link increment}: a per-instance epoch would disagree with other instances. */
  async getOrSet(key: string, value: string, ttlMs: number, now: number): Promise<string> {
    if (!this.primary.getOrSet) throw new TypeError('FallbackRateLimitStorage: the primary storage has no getOrSet');
    let probe = false;
    if (this.downUntil !== 0) {
      if (this.probing || performance.now() < this.downUntil) return this.incrementWhileDown().then(() => value);
      this.probing = probe = true;
    }
    try {
      const stored = await withTimeout(this.primary.getOrSet(key, value, ttlMs, now), this.timeoutMs);
      this.markUp();
      return stored;
    } catch (error) {
      if (error instanceof RangeError) throw error;
      this.markDown(error, 'consume');
      return this.incrementWhileDown().then(() => value);
    } finally {
      if (probe) this.probing = false;
    }
  }

  /**
   * Markers fail closed whatever the policy: a per-instance or an always-1 answer would let a
   * used code be used again. Stateless sign-in answers 503 while the primary is down.
   */
  private incrementWhileDown(): Promise<number> {
    return Promise.reject(new RateLimitUnavailableError(Math.max(1, Math.ceil(this.downUntil - performance.now()))));
  }

  async read(key: string, now: number): Promise<number> {
    if (this.downUntil !== 0 && (this.probing || performance.now() < this.downUntil)) return this.incrementWhileDown();
    try {
      return await withTimeout(this.primary.read(key, now), this.timeoutMs);
    } catch (error) {
      if (error instanceof RangeError) throw error;
      this.markDown(error, 'consume');
      return this.incrementWhileDown();
    }
  }

  async reset(keys: readonly string[]): Promise<void> {
    const local = this.local?.reset(keys);
    try {
      await withTimeout(this.primary.reset(keys), this.timeoutMs);
    } catch (error) {
      this.report(error, 'reset');
    }
    await local;
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close?.(), this.local?.close?.()]);
  }

  private whileDown(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision> {
    switch (this.policy) {
      case 'local':
        return this.local!.consume(counters, now);
      case 'fail-open':
        return Promise.resolve(unlimited(counters));
      case 'fail-closed':
        return Promise.reject(
          new RateLimitUnavailableError(Math.max(1, Math.ceil(this.downUntil - performance.now()))),
        );
    }
  }

  private markDown(error: unknown, operation: 'init' | 'consume'): void {
    this.downUntil = performance.now() + this.probeIntervalMs;
    this.report(error, operation);
  }

  private markUp(): void {
    if (this.downUntil === 0) return;
    this.downUntil = 0;
    try {
      this.onRecover?.();
    } catch {
      // A faulty listener must not turn a recovery into a failure.
    }
  }

  /** Calls `onError` at most once per `errorReportIntervalMs`, counting the errors in between. */
  private report(error: unknown, operation: RateLimitStorageErrorInfo['operation']): void {
    if (!this.onError) return;
    const at = performance.now();
    if (at - this.lastReportAt < this.errorReportIntervalMs) {
      this.suppressed++;
      return;
    }
    const suppressed = this.suppressed;
    this.lastReportAt = at;
    this.suppressed = 0;
    try {
      this.onError(error, { operation, policy: this.policy, suppressed });
    } catch {
      // Logging must never break rate limiting.
    }
  }
}

/** The `'fail-open'` answer: allowed, with every counter reported at its full allowance. */
function unlimited(counters: readonly RateLimitCounter[]): RateLimitDecision {
  const states = new Array<RateLimitCounterState>(counters.length);
  for (let i = 0; i < counters.length; i++) {
    const { key, limit, windowMs } = counters[i]!;
    states[i] = { key, limit, windowMs, remaining: limit, retryAfterMs: 0, resetMs: 0 };
  }
  return { allowed: true, counters: states };
}

/** Settles like `promise`, or rejects with {@link RateLimitStorageTimeoutError} after `ms` (0/∞: never). */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  if (!(ms > 0) || ms === Number.POSITIVE_INFINITY) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RateLimitStorageTimeoutError(ms)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}
