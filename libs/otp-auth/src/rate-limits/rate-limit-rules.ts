import type { RateLimitStorage } from './rate-limit-storage.interface.js';
import type { RateLimitFailurePolicy } from './fallback-rate-limit.storage.js';
import type { TrustProxy } from './client-ip.js';

/** At most `limit` requests per `window` seconds (sliding). */
export interface RateLimitRule {
  limit: number;
  window: number;
}

/**
 * The counters applied to one kind of request; `false` switches a counter off.
 *
 * Per-address counters are charged only for requests that pass validation and the resend
 * cooldown, and they are kept per (address, client network): a stranger who names someone
 * else's address spends their own allowance, not the owner's. `perEmailTotal` is the
 * address-wide ceiling above them, across all clients.
 */
export interface RateLimitScopes {
  /** Per email address and client network (IPv4 address, IPv6 /64); the address is hashed before use as a key. */
  perEmail?: RateLimitRule | false;
  /** Per email address across all clients: the ceiling a distributed caller can reach. */
  perEmailTotal?: RateLimitRule | false;
  /** Per client IP (IPv6 by /64). */
  perIp?: RateLimitRule | false;
  /** Per IPv6 /56 (a typical home allocation), beside the /64 counter; IPv4 clients skip it. */
  perIpv6Prefix56?: RateLimitRule | false;
  /** Per IPv6 /48 (a typical site allocation), beside the /64 and /56 counters. */
  perIpv6Prefix48?: RateLimitRule | false;
  /** All clients together: a ceiling on what the service sends or checks. */
  global?: RateLimitRule | false;
}

/** Sending adds daily caps per destination against email bombing and SMS pumping. */
export interface SendRateLimitScopes extends RateLimitScopes {
  /** Per email address and client network, per day. */
  perEmailDaily?: RateLimitRule | false;
  /** Per email address across all clients, per day. */
  perEmailDailyTotal?: RateLimitRule | false;
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
  /**
   * `request-otp`. Defaults: per address and client network 5 per 10 min and 20 per day; per
   * address in all 15 per 10 min and 50 per day; per IP 20 per 10 min (IPv6 /64), 60 per /56,
   * 200 per /48; 1000/min in all.
   */
  send?: SendRateLimitScopes;
  /**
   * `verify-otp` and `totp/verify`. Defaults: per address and client network 10 per 10 min; per
   * address in all 30 per 10 min; per IP 50 per 10 min (IPv6 /64), 150 per /56, 500 per /48;
   * 5000/min in all. Wrong codes are capped separately and address-wide (`addressFailureLimit`,
   * `consecutiveFailures`).
   */
  verify?: RateLimitScopes;
}

/** Default counters (documented in the README and in {@link RateLimitOptions}). */
export const RATE_LIMIT_DEFAULTS = {
  send: {
    perEmail: { limit: 5, window: 600 },
    perEmailDaily: { limit: 20, window: 86_400 },
    perEmailTotal: { limit: 15, window: 600 },
    perEmailDailyTotal: { limit: 50, window: 86_400 },
    perIp: { limit: 20, window: 600 },
    perIpv6Prefix56: { limit: 60, window: 600 },
    perIpv6Prefix48: { limit: 200, window: 600 },
    global: { limit: 1000, window: 60 },
  },
  verify: {
    perEmail: { limit: 10, window: 600 },
    perEmailTotal: { limit: 30, window: 600 },
    perIp: { limit: 50, window: 600 },
    perIpv6Prefix56: { limit: 150, window: 600 },
    perIpv6Prefix48: { limit: 500, window: 600 },
    global: { limit: 5000, window: 60 },
  },
} as const;
