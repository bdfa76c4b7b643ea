import type {
  MarkerStorageReport,
  RateLimitCounter,
  RateLimitCounterState,
  RateLimitDecision,
  RateLimitStorage,
} from './rate-limit-storage.interface.js';
import { assertValidCounter, assertValidNow, counterState, hasRoom, windowIndexAt } from './sliding-window.js';
import { RateLimitUnavailableError } from '../errors.js';

/** Settings of {@link InMemoryRateLimitStorage}. */
export interface InMemoryRateLimitStorageOptions {
  /**
   * Most counters kept at once. Default 100 000 (roughly 15–20 MB of heap). Size it well above the
   * number of keys that are live in normal traffic (distinct addresses + emails per longest
   * window) so eviction only ever happens under a flood.
   */
  maxKeys?: number;
}

/** Default of {@link InMemoryRateLimitStorageOptions.maxKeys}. */
export const DEFAULT_MAX_RATE_LIMIT_KEYS = 100_000;

/**
 * One counter's sliding-window state, and its links in the recency list. A class so every entry
 * has the same hidden shape; the intrusive list makes an LRU touch a few pointer writes instead
 * of re-inserting the key into the map (which would hash it again).
 */
class WindowEntry {
  /** Neighbours in the recency list (circular, through the storage's sentinel). */
  older: WindowEntry = this;
  newer: WindowEntry = this;

  constructor(
    readonly key: string,
    public windowMs: number,
    public windowIndex: number,
    public previous: number,
    public current: number,
  ) {}

  /** Moves the state forward to window `index`; meaning-preserving, so it may run on refused calls. */
  roll(index: number): void {
    if (index <= this.windowIndex) return; // same window, or a caller whose clock lags: keep the later one
    this.previous = index === this.windowIndex + 1 ? this.current : 0;
    this.current = 0;
    this.windowIndex = index;
  }

  /** When the state has decayed to nothing: the end of the window after the current one. */
  get expiresAt(): number {
    return (this.windowIndex + 2) * this.windowMs;
  }
}

/**
 * Counters in this process's memory: for a single instance, for tests, and as the per-instance
 * fallback when Redis is unreachable (see `FallbackRateLimitStorage`). Several instances behind a
 * load balancer each count on their own, so use `RedisRateLimitStorage` there.
 *
 * Memory is bounded by `maxKeys`. When a new key would exceed it, expired counters are swept
 * first (a full pass, at most once per `maxKeys / 4` insertions so the cost stays O(1) amortized),
 * then the least-recently-used counters are evicted. Every consume touches its counters, refused
 * ones included, so a client hammering a full counter keeps it alive. The trade-off: an attacker
 * able to create more than `maxKeys` fresh counters within one window (e.g. a botnet, as refused
 * calls create nothing, a single address cannot get past its own per-address limit) can evict
 * older counters and reset them; the default is sized so that normal load never evicts anything.
 */
export class InMemoryRateLimitStorage implements RateLimitStorage {
  private readonly entries = new Map<string, WindowEntry>();
  /** Sentinel of the recency list: `lru.newer` is the least recently used entry, `lru.older` the most. */
  private readonly lru = new WindowEntry('', 1, 0, 0, 0);
  private readonly maxKeys: number;
  private readonly sweepEvery: number;
  private insertsSinceSweep: number;
  /** Per-call scratch of the entries found in the check pass, reused to avoid a second lookup. */
  private readonly found: (WindowEntry | undefined)[] = [];

  constructor(options: InMemoryRateLimitStorageOptions = {}) {
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_RATE_LIMIT_KEYS;
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      throw new RangeError(`InMemoryRateLimitStorage: maxKeys must be a positive integer, got ${maxKeys}`);
    }
    this.maxKeys = maxKeys;
    this.sweepEvery = Math.max(1, maxKeys >>> 2);
    this.insertsSinceSweep = this.sweepEvery; // the first time it is full, sweep straight away
  }

  /** Exact fixed-lifetime counters of {@link increment}, bounded by `maxKeys` too. */
  private readonly markers = new Map<string, { count: number; expiresAt: number; value?: string }>();
  private lastMarkerSweep = Number.NEGATIVE_INFINITY;

  /**
   * Live markers are never evicted (a dropped "used" marker would make a code valid again):
   * when the map is full of them, this throws `RateLimitUnavailableError` and the caller answers
   * 503. Expired ones are swept when full, at most once a second so a flood cannot make every
   * call scan the map.
   */
  increment(key: string, ttlMs: number, now: number): Promise<number> {
    assertValidNow(now);
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
      return Promise.reject(new RangeError(`rate limit: ttlMs must be a positive integer, got ${ttlMs}`));
    }
    const marker = this.markers.get(key);
    if (marker !== undefined && marker.expiresAt > now) return Promise.resolve(++marker.count);
    if (marker !== undefined) this.markers.delete(key);
    if (this.markers.size >= this.maxKeys && now - this.lastMarkerSweep >= 1000) {
      this.lastMarkerSweep = now;
      for (const [oldKey, old] of this.markers) if (old.expiresAt <= now) this.markers.delete(oldKey);
    }
    if (this.markers.size >= this.maxKeys) return Promise.reject(new RateLimitUnavailableError(1000));
    this.markers.set(key, { count: 1, expiresAt: now + ttlMs });
    return Promise.resolve(1);
  }

  read(key: string, now: number): Promise<number> {
    const marker = this.markers.get(key);
    return Promise.resolve(marker !== undefined && marker.expiresAt > now ? marker.count : 0);
  }

  /** Kept with the {@link increment} markers: same bound, never evicted live, synchronous so atomic. */
  getOrSet(key: string, value: string, ttlMs: number, now: number): Promise<string> {
    let marker = this.markers.get(key);
    if (marker === undefined || marker.expiresAt <= now) {
      // Validates, bounds and creates the marker synchronously; rejects when it could not.
      const created = this.increment(key, ttlMs, now);
      marker = this.markers.get(key);
      if (marker === undefined) return created.then(() => value);
    } else if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
      return Promise.reject(new RangeError(`rate limit: ttlMs must be a positive integer, got ${ttlMs}`));
    }
    marker.value ??= value;
    marker.expiresAt = Math.max(marker.expiresAt, now + ttlMs);
    return Promise.resolve(marker.value);
  }

  /** Per-process markers, never evicted (a full map answers 503 instead). */
  describeMarkers(): Promise<MarkerStorageReport> {
    return Promise.resolve({ shared: false, mayEvict: false, detail: 'in-memory (this process only)' });
  }

  /** Number of counters held (at most `maxKeys`). */
  get size(): number {
    return this.entries.size;
  }

  consume(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision> {
    try {
      return Promise.resolve(this.consumeSync(counters, now));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** {@link consume} without the promise; the work is synchronous, which is what makes it atomic. */
  consumeSync(counters: readonly RateLimitCounter[], now: number): RateLimitDecision {
    assertValidNow(now);
    now = Math.floor(now);
    const count = counters.length;
    const found = this.found;
    let allowed = true;

    // Check pass: roll every counter to `now` and see whether each has room.
    for (let i = 0; i < count; i++) {
      const counter = counters[i]!;
      assertValidCounter(counter);
      const entry = this.entries.get(counter.key);
      if (entry !== undefined) {
        this.touch(entry); // refused calls included
        if (entry.windowMs !== counter.windowMs) {
          // The window was reconfigured: the old counts are on another time grid, start afresh.
          entry.windowMs = counter.windowMs;
          entry.windowIndex = windowIndexAt(now, counter.windowMs);
          entry.previous = entry.current = 0;
        } else {
          entry.roll(windowIndexAt(now, counter.windowMs));
        }
        if (
          allowed &&
          !hasRoom(
            counter.limit,
            counter.windowMs,
            now - entry.windowIndex * counter.windowMs,
            entry.previous,
            entry.current,
          )
        ) {
          allowed = false;
        }
      } // else a fresh counter: 0 < limit always holds.
      found[i] = entry;
    }

    // Bump pass, all or nothing. Refused calls create no entry, so they cannot grow the map.
    const states = new Array<RateLimitCounterState>(count);
    for (let i = 0; i < count; i++) {
      const counter = counters[i]!;
      let entry = found[i];
      found[i] = undefined;
      if (allowed) {
        if (entry === undefined) {
          entry = new WindowEntry(counter.key, counter.windowMs, windowIndexAt(now, counter.windowMs), 0, 0);
          this.insert(entry, now);
          // A key given twice must not get two entries (the list and the map would disagree).
          for (let j = i + 1; j < count; j++) if (counters[j]!.key === counter.key) found[j] ??= entry;
        }
        entry.current++;
      }
      states[i] =
        entry === undefined
          ? counterState(counter, now, windowIndexAt(now, counter.windowMs), 0, 0)
          : counterState(counter, now, entry.windowIndex, entry.previous, entry.current);
    }
    found.length = 0;
    return { allowed, counters: states };
  }

  reset(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.markers.delete(key);
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry !== undefined) this.remove(entry);
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.entries.clear();
    this.lru.older = this.lru.newer = this.lru;
    return Promise.resolve();
  }

  private insert(entry: WindowEntry, now: number): void {
    const entries = this.entries;
    const lru = this.lru;
    if (entries.size >= this.maxKeys) {
      if (this.insertsSinceSweep >= this.sweepEvery) {
        this.insertsSinceSweep = 0;
        for (let e = lru.newer; e !== lru;) {
          const newer = e.newer;
          if (e.expiresAt <= now) this.remove(e);
          e = newer;
        }
      }
      // Still full: evict the least recently used.
      while (entries.size >= this.maxKeys && lru.newer !== lru) this.remove(lru.newer);
    }
    this.insertsSinceSweep++;
    entries.set(entry.key, entry);
    this.append(entry);
  }

  private remove(entry: WindowEntry): void {
    this.entries.delete(entry.key);
    entry.older.newer = entry.newer;
    entry.newer.older = entry.older;
  }

  private touch(entry: WindowEntry): void {
    if (entry.newer === this.lru) return; // already the most recent
    entry.older.newer = entry.newer;
    entry.newer.older = entry.older;
    this.append(entry);
  }

  private append(entry: WindowEntry): void {
    const lru = this.lru;
    entry.older = lru.older;
    entry.newer = lru;
    lru.older.newer = entry;
    lru.older = entry;
  }
}
