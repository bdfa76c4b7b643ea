import type { RateLimitCounterState, RateLimitDecision } from './rate-limit-storage.interface.js';

/**
 * Response headers describing a rate-limit decision, in the structured-field form of
 * draft-ietf-httpapi-ratelimit-headers (revisions 08–11):
 *
 * ```http
 * RateLimit-Policy: "per-address";q=10;w=900, "per-email";q=5;w=3600
 * RateLimit: "per-email";r=0;t=42
 * Retry-After: 42
 * ```
 */
export interface RateLimitHeaders {
  /** Every policy: `"name";q=<limit>;w=<window in seconds>`. */
  'RateLimit-Policy': string;
  /**
   * The most restrictive policy's state: `"name";r=<remaining>;t=<seconds>`, where `t` is the
   * time until one more request fits when `r` is 0, else until the counter is back to full.
   */
  RateLimit: string;
  /** Only on refusal: integer seconds until every counter has room again (rounded up, at least 1). */
  'Retry-After'?: string;
}

/** A wait in milliseconds as a `Retry-After` value: whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Builds the {@link RateLimitHeaders} for `decision`, naming counter `i` `names[i]` (printable
 * ASCII; quotes and backslashes are escaped). The `RateLimit` field reports the most restrictive
 * counter: fewest remaining, then longest wait, then longest reset. On refusal `Retry-After` is
 * the longest wait of all counters, since the request needs room in every one; its `t` then
 * equals that wait, as the draft asks (`Retry-After` not earlier than the effective window).
 */
export function rateLimitHeaders(decision: RateLimitDecision, names: readonly string[]): RateLimitHeaders {
  const counters = decision.counters;
  if (counters.length === 0) throw new RangeError('rateLimitHeaders: the decision has no counters');
  if (names.length !== counters.length) {
    throw new RangeError(`rateLimitHeaders: ${counters.length} counters but ${names.length} names`);
  }
  let policy = '';
  let tightest = 0;
  let longestWait = 0;
  for (let i = 0; i < counters.length; i++) {
    const counter = counters[i]!;
    if (i > 0) policy += ', ';
    policy += `${sfString(names[i]!)};q=${counter.limit};w=${Math.max(1, Math.ceil(counter.windowMs / 1000))}`;
    if (i > 0 && isTighter(counter, counters[tightest]!)) tightest = i;
    if (counter.retryAfterMs > longestWait) longestWait = counter.retryAfterMs;
  }
  const state = counters[tightest]!;
  const t = Math.ceil((state.remaining > 0 ? state.resetMs : state.retryAfterMs) / 1000);
  const headers: RateLimitHeaders = {
    'RateLimit-Policy': policy,
    RateLimit: `${sfString(names[tightest]!)};r=${state.remaining};t=${t}`,
  };
  if (!decision.allowed) headers['Retry-After'] = String(retryAfterSeconds(longestWait));
  return headers;
}

function isTighter(a: RateLimitCounterState, b: RateLimitCounterState): boolean {
  if (a.remaining !== b.remaining) return a.remaining < b.remaining;
  if (a.retryAfterMs !== b.retryAfterMs) return a.retryAfterMs > b.retryAfterMs;
  return a.resetMs > b.resetMs;
}

/** A structured-field String (RFC 8941 §3.3.3): printable ASCII in quotes, `"` and `\` escaped. */
function sfString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new TypeError(`rate-limit policy name must be printable ASCII: ${JSON.stringify(value)}`);
  }
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}
