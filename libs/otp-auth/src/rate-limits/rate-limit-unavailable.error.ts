/**
 * Counter storage cannot answer: thrown by `FallbackRateLimitStorage` while the primary is
 * unreachable (request counters under `'fail-closed'`; exact markers under every policy), and by
 * `InMemoryRateLimitStorage` when it is full of live markers. The HTTP layer answers 503 with
 * `Retry-After` from {@link retryAfterMs}.
 */
export class RateLimitUnavailableError extends Error {
  override readonly name = 'RateLimitUnavailableError';

  constructor(
    /** Suggested wait before retrying, in ms: until the primary is probed again. */
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super('Rate limiting is temporarily unavailable.', options);
  }
}
