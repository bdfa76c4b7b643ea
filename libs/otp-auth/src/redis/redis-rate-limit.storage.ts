import { Logger } from '@nestjs/common';
import { type Cluster, Redis, type RedisOptions } from 'ioredis';
import type {
  MarkerStorageReport,
  RateLimitCounter,
  RateLimitCounterState,
  RateLimitDecision,
  RateLimitStorage,
} from '../rate-limits/rate-limit-storage.interface.js';
import { assertValidCounter, assertValidNow, counterState } from '../rate-limits/sliding-window.js';

/**
 * ioredis options recommended for rate limiting, applied to clients this package creates from a
 * `url` and worth setting on a client you pass in: fail fast instead of queueing commands while
 * Redis is unreachable, so requests fall back (see `FallbackRateLimitStorage`) within
 * milliseconds rather than hanging until Redis returns.
 *
 * - `enableOfflineQueue: false`: reject commands at once while disconnected (the default queues them).
 *   A client created this way also rejects the first commands sent before its connection is ready.
 * - `maxRetriesPerRequest: 0`: do not resend a command after a reconnect; a late count is useless.
 * - `connectTimeout: 2000`: give up on a connection attempt that does not answer.
 * - `commandTimeout: 1000`: backstop for a server that accepts but never answers (the fallback
 *   wrapper's own `timeoutMs`, 250 ms by default, normally fires first).
 * - `retryStrategy`: keep reconnecting forever with a short capped back-off, so Redis is used again
 *   as soon as it is back.
 */
export const RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 2000,
  commandTimeout: 1000,
  retryStrategy: (attempt: number): number => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
} as const satisfies RedisOptions;

/** Settings of {@link RedisRateLimitStorage}: your ioredis client, or a URL to create one. */
export type RedisRateLimitStorageOptions = (
  | {
      /** Your ioredis client (or cluster). Left open by {@link RedisRateLimitStorage.close}. */
      client: Redis | Cluster;
      url?: never;
      redisOptions?: never;
    }
  | {
      /** `redis://` / `rediss://` URL; the storage creates, owns and closes the client. */
      url: string;
      /** Extra ioredis options, applied over {@link RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS}. */
      redisOptions?: RedisOptions;
      client?: never;
    }
) & {
  /**
   * Prefix of every key. Default `'otp:rl:'`. On Redis Cluster a call's keys must share a hash
   * slot (the script touches them all atomically): put a hash tag in the prefix, e.g. `'{otp:rl}:'`.
   */
  keyPrefix?: string;
};

/** Default of {@link RedisRateLimitStorageOptions.keyPrefix}. */
export const DEFAULT_RATE_LIMIT_KEY_PREFIX = 'otp:rl:';

/**
 * Extra lifetime given to each key beyond the moment its counts have fully decayed, so instances
 * whose clocks lag a little behind still see them.
 */
const EXPIRY_MARGIN_MS = 1000;

/** Longest wait for the connection in {@link RedisRateLimitStorage.init}. */
const INIT_TIMEOUT_MS = 5000;

/** Versioned so a client shared with an older copy of this package never runs the wrong script. */
const SCRIPT_NAME = 'otpAuthRateLimitConsumeV1';

/**
 * The whole multi-counter check-and-bump, atomic because Redis runs a script without interleaving
 * other commands. The arithmetic is `sliding-window.ts` line for line, on integers below 2^53, which
 * Lua's doubles represent exactly.
 *
 * KEYS[k]: a counter's key. ARGV[1]: now (epoch ms), ARGV[2]: expiry margin (ms),
 * ARGV[1 + 2k], ARGV[2 + 2k]: limit and windowMs of KEYS[k].
 * Hash fields: w = windowMs, i = fixed-window index, p = previous count, c = current count.
 * Returns {allowed, index1, previous1, current1, index2, ...}, counts after the call.
 */
const CONSUME_SCRIPT = `
local now = tonumber(ARGV[1])
local margin = tonumber(ARGV[2])
local reply = {0}
local allowed = 1
for k = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * k])
  local w = tonumber(ARGV[2 + 2 * k])
  local index = math.floor(now / w)
  local p, c = 0, 0
  local s = redis.call('HMGET', KEYS[k], 'w', 'i', 'p', 'c')
  local si = tonumber(s[2])
  if si and tonumber(s[1]) == w then
    if si >= index then
      index = si
      p = tonumber(s[3]) or 0
      c = tonumber(s[4]) or 0
    elseif si == index - 1 then
      p = tonumber(s[4]) or 0
    end
  end
  local elapsed = now - index * w
  local overlap = w
  if elapsed > 0 then overlap = w - elapsed end
  if p * overlap + c * w >= limit * w then allowed = 0 end
  reply[3 * k - 1] = index
  reply[3 * k] = p
  reply[3 * k + 1] = c
end
if allowed == 1 then
  for k = 1, #KEYS do
    local w = tonumber(ARGV[2 + 2 * k])
    local index = reply[3 * k - 1]
    local c = reply[3 * k + 1] + 1
    reply[3 * k + 1] = c
    redis.call('HSET', KEYS[k], 'w', w, 'i', index, 'p', reply[3 * k], 'c', c)
    redis.call('PEXPIRE', KEYS[k], (index + 2) * w - now + margin)
  end
end
reply[1] = allowed
return reply
`;

type ConsumeScript = (...args: (string | number)[]) => Promise<unknown>;

const INCREMENT_SCRIPT_NAME = 'otpAuthIncrement';
/** INCR with the expiry set by the call that creates the key, in one atomic step. */
const INCREMENT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

const GET_OR_SET_SCRIPT_NAME = 'otpAuthGetOrSet';
/** Set-if-absent and read in one step, extending (never shortening) the lifetime to ARGV[2] ms. */
const GET_OR_SET_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`;

/** The only `maxmemory-policy` under which Redis never drops a live key to make room. */
const NO_EVICTION = 'noeviction';

/**
 * Counters in Redis, shared by every instance of the app: one Lua script call per consume,
 * whatever the number of counters (EVALSHA via ioredis `defineCommand`, which sends the script
 * itself when Redis answers NOSCRIPT, e.g. after a restart). Each key holds a small hash and expires once its counts have
 * decayed (two windows after its last bump), so Redis frees idle counters by itself.
 *
 * `now` is the caller's clock, not Redis `TIME`, so tests can move time and every storage
 * behaves alike; keep the instances' clocks synchronised (NTP). The keys of one call are assumed
 * distinct.
 *
 * Errors (connection refused, timeouts) are thrown to the caller; wrap this storage in a
 * `FallbackRateLimitStorage` to decide what happens while Redis is down.
 */
export class RedisRateLimitStorage implements RateLimitStorage {
  /** The ioredis client in use. */
  readonly client: Redis | Cluster;
  private readonly ownsClient: boolean;
  private readonly keyPrefix: string;
  private readonly script: ConsumeScript;
  private readonly incrementScript: ConsumeScript;
  private readonly getOrSetScript: ConsumeScript;

  constructor(options: RedisRateLimitStorageOptions) {
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else if (options.url) {
      this.client = new Redis(options.url, { ...RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS, ...options.redisOptions });
      this.ownsClient = true;
      // Failures reach callers as rejected commands; without a listener ioredis would also print
      // every reconnection error to the console.
      this.client.on('error', () => undefined);
    } else {
      throw new Error('RedisRateLimitStorage: pass `client` (an ioredis instance) or `url`.');
    }
    this.keyPrefix = options.keyPrefix ?? DEFAULT_RATE_LIMIT_KEY_PREFIX;
    const commands = this.client as unknown as Record<string, ConsumeScript | undefined>;
    if (typeof commands[SCRIPT_NAME] !== 'function') this.client.defineCommand(SCRIPT_NAME, { lua: CONSUME_SCRIPT });
    this.script = commands[SCRIPT_NAME]!;
    if (typeof commands[INCREMENT_SCRIPT_NAME] !== 'function') {
      this.client.defineCommand(INCREMENT_SCRIPT_NAME, { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
    }
    this.incrementScript = commands[INCREMENT_SCRIPT_NAME]!;
    if (typeof commands[GET_OR_SET_SCRIPT_NAME] !== 'function') {
      this.client.defineCommand(GET_OR_SET_SCRIPT_NAME, { numberOfKeys: 1, lua: GET_OR_SET_SCRIPT });
    }
    this.getOrSetScript = commands[GET_OR_SET_SCRIPT_NAME]!;
  }

  async getOrSet(key: string, value: string, ttlMs: number, now: number): Promise<string> {
    assertValidNow(now);
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
      throw new RangeError(`rate limit: ttlMs must be a positive integer, got ${ttlMs}`);
    }
    const reply = await this.getOrSetScript.call(this.client, this.keyPrefix + key, value, ttlMs);
    if (typeof reply !== 'string') throw new Error('RedisRateLimitStorage: unexpected reply from the getOrSet script');
    return reply;
  }

  /**
   * Reads `maxmemory-policy`: anything but `noeviction` lets Redis drop live keys under memory
   * pressure (the `volatile-*` policies too, as every key here has a TTL), which resets rate
   * limits early and, for stateless codes, forgets that a code was used. Judged on the policy
   * alone, whatever `maxmemory` is now: it can be set later, and managed services set it.
   * `CONFIG` is often disabled on managed Redis; then `mayEvict` is undefined.
   */
  async describeMarkers(): Promise<MarkerStorageReport> {
    try {
      const reply: unknown = await this.client.config('GET', 'maxmemory-policy');
      // [name, value] from one server; a cluster client asks one node, assumed configured like the others.
      const policy = Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
      return policy === undefined
        ? { shared: true, mayEvict: undefined, detail: 'CONFIG GET maxmemory-policy gave no answer' }
        : { shared: true, mayEvict: policy !== NO_EVICTION, detail: `maxmemory-policy ${policy}` };
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      return { shared: true, mayEvict: undefined, detail: `CONFIG GET maxmemory-policy failed: ${message}` };
    }
  }

  async increment(key: string, ttlMs: number, now: number): Promise<number> {
    assertValidNow(now);
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
      throw new RangeError(`rate limit: ttlMs must be a positive integer, got ${ttlMs}`);
    }
    const reply = await this.incrementScript.call(this.client, this.keyPrefix + key, ttlMs);
    if (typeof reply !== 'number') throw new Error('RedisRateLimitStorage: unexpected reply from the increment script');
    return reply;
  }

  /**
   * Waits until the client is connected (connecting it if it was created with `lazyConnect`) and
   * loads the script, so the first requests neither fail on a connection still being set up (with
   * `enableOfflineQueue: false`) nor pay for a NOSCRIPT round trip. Then checks the eviction
   * policy ({@link describeMarkers}) and logs a warning unless it is `noeviction`.
   * @throws when Redis cannot be reached (first connection error, or after 5 s); the module logs it
   * and starts anyway, its failure policy applying until Redis answers.
   */
  async init(): Promise<void> {
    const client = this.client;
    if (client.status === 'wait') await client.connect();
    else if (client.status !== 'ready') await whenReady(client, INIT_TIMEOUT_MS);
    await client.script('LOAD', CONSUME_SCRIPT);
    const { mayEvict, detail } = await this.describeMarkers();
    // Only a warning here: evicted counters weaken limits. Stateless mode refuses to start instead.
    if (mayEvict === true) {
      new Logger('OtpAuth').warn(
        `Redis rate-limit storage: ${detail}; Redis may evict live counters and markers. Set \`maxmemory-policy noeviction\` (stateless codes refuse to start otherwise).`,
      );
    } else if (mayEvict === undefined) {
      new Logger('OtpAuth').warn(
        `Redis rate-limit storage: could not check the eviction policy (${detail}). Make sure \`maxmemory-policy\` is \`noeviction\`: evicted counters reset limits, evicted stateless markers make used codes valid again.`,
      );
    }
  }

  async consume(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision> {
    assertValidNow(now);
    now = Math.floor(now);
    const count = counters.length;
    // [numKeys, key1..keyN, now, margin, limit1, window1, ...]
    const args = new Array<string | number>(1 + count + 2 + 2 * count);
    args[0] = count;
    args[count + 1] = now;
    args[count + 2] = EXPIRY_MARGIN_MS;
    for (let i = 0; i < count; i++) {
      const counter = counters[i]!;
      assertValidCounter(counter);
      args[1 + i] = this.keyPrefix + counter.key;
      args[count + 3 + 2 * i] = counter.limit;
      args[count + 4 + 2 * i] = counter.windowMs;
    }
    const reply = await this.script.apply(this.client, args);
    if (!Array.isArray(reply) || reply.length !== 1 + 3 * count) {
      throw new Error('RedisRateLimitStorage: unexpected reply from the rate-limit script');
    }
    const values = reply as number[];
    const states = new Array<RateLimitCounterState>(count);
    for (let i = 0; i < count; i++) {
      states[i] = counterState(counters[i]!, now, values[1 + 3 * i]!, values[2 + 3 * i]!, values[3 + 3 * i]!);
    }
    return { allowed: values[0] === 1, counters: states };
  }

  async read(key: string, now: number): Promise<number> {
    assertValidNow(now);
    const value = await this.client.get(this.keyPrefix + key);
    return value === null ? 0 : Number(value);
  }

  async reset(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.client.del(...keys.map((key) => this.keyPrefix + key));
  }

  /**
   * Quits the client if this storage created it (from `url`), resolving once the connection has
   * ended; a client you passed stays open.
   */
  async close(): Promise<void> {
    if (!this.ownsClient || this.client.status === 'end') return;
    const ended = new Promise((resolve) => this.client.once('end', resolve));
    try {
      await this.client.quit();
    } catch {
      // Not connected (e.g. Redis is down): nothing to say goodbye to, just stop reconnecting.
      this.client.disconnect();
    }
    // ioredis emits no 'end' when disconnected between reconnect attempts: do not wait forever.
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}

/** Resolves when `client` is ready; rejects on its first error, when it ends, or after `timeoutMs`. */
function whenReady(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (client.status === 'end') return Promise.reject(new Error('RedisRateLimitStorage: the client has been closed'));
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: Error): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
      if (error) reject(error);
      else resolve();
    };
    const onReady = (): void => settle();
    const onError = (error: Error): void => settle(error);
    const onEnd = (): void => settle(new Error('RedisRateLimitStorage: the connection ended'));
    const timer = setTimeout(() => settle(new Error(`Redis not ready within ${timeoutMs} ms`)), timeoutMs);
    client.once('ready', onReady);
    client.once('error', onError);
    client.once('end', onEnd);
  });
}
