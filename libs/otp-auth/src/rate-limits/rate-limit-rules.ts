import type { RateLimitStorage } from './rate-limit-storage.interface.js';
import type { RateLimitFailurePolicy } from './fallback-rate-limit.storage.js';
import type { TrustProxy } from './client-ip.js';

/** At most `limit` requests per `window` seconds (sliding). */
export interface RateLimitRule {
  limit: number;
  window: number;
}

/** The counters applied to one kind of request; `false` switches a counter off. */
export interface RateLimitScopes {
  /** Per email address (normalised, hashed before it is used as a key). */
  perEmail?: RateLimitRule | false;
  /** Per client IP (IPv6 by /64). */
  perIp?: RateLimitRule | false;
  /** All clients together: a ceiling on what the service sends or checks. */
  global?: RateLimitRule | false;
}

/** Sending adds a daily cap per destination against email bombing and SMS pumping. */
export interface SendRateLimitScopes extends RateLimitScopes {
  perEmailDaily?: RateLimitRule | false;
}

/**
 * Request rate limits of the auth routes. They come on top of the per-code and per-address
 * guess limits, which the store enforces atomically and which hold without any of this.
 * Unknown addresses are counted exactly like known ones, so a 429 reveals nothing.
 */
export interface RateLimitOptions {
  /** Set false to switch the module's request limits off (e.g. an API gateway does it). Default true. */
  enabled?: boolean;
  /**
   * Where counters live. Default: in this process's memory (bounded). Several instances need a
   * shared one: `new RedisRateLimitStorage({ client })` from `nestjs-otp-auth/redis`.
   */
  storage?: RateLimitStorage;
  /**
   * What happens when `storage` cannot be reached (it is wrapped in a `FallbackRateLimitStorage`
   * unless it is the in-memory one). Default `'local'`: per-instance memory limits meanwhile.
   */
  onStorageError?: RateLimitFailurePolicy;
  /**
   * Which proxies may set `X-Forwarded-For`. Default false: the socket's address only, so a client
   * cannot choose its own IP. Give a hop count or a list of addresses/CIDRs of your proxies.
   */
  trustProxy?: TrustProxy;
  /** `request-otp`. Defaults: 5 per 10 min per email, 20 per day per email, 20 per 10 min per IP, 1000/min in all. */
  send?: SendRateLimitScopes;
  /** `verify-otp` and `totp/verify`. Defaults: 10 per 10 min per email, 50 per 10 min per IP, 5000/min in all. */
  verify?: RateLimitScopes;
}

/** Default counters (documented in the README and in {@link RateLimitOptions}). */
export const RATE_LIMIT_DEFAULTS = {
  send: {
    perEmail: { limit: 5, window: 600 },
    perEmailDaily: { limit: 20, window: 86_400 },
    perIp: { limit: 20, window: 600 },
    global: { limit: 1000, window: 60 },
  },
  verify: {
    perEmail: { limit: 10, window: 600 },
    perIp: { limit: 50, window: 600 },
    global: { limit: 5000, window: 60 },
  },
} as const;
