import { HttpException, HttpStatus } from '@nestjs/common';

/**
 * Every error the module throws, in one place. Each carries a stable `code` (snake_case, never
 * reworded) for logs, tests and callers that branch on it; messages are for people and may change.
 * The HTTP ones are Nest `HttpException`s; those with `retryAfterSeconds` are answered with a
 * `Retry-After` header by `RetryAfterFilter`, wherever the app throws them.
 */

/** The stable codes of the module's errors. */
export type OtpAuthErrorCode =
  | 'configuration_invalid'
  | 'delivery_failed_permanently'
  | 'no_recipient'
  | 'rate_limited'
  | 'resend_cooldown'
  | 'service_unavailable'
  | 'store_unavailable'
  | 'rate_limit_unavailable'
  | 'rate_limit_storage_unavailable'
  | 'rate_limit_storage_timeout';

/** What clients are told to wait when the database cannot be reached, in seconds. */
export const STORE_UNAVAILABLE_RETRY_AFTER = 5;

// ---- startup ------------------------------------------------------------------------------------

/** Thrown at startup when the module's options are unusable; the message says how to fix them. */
export class OtpAuthConfigurationError extends Error {
  readonly code = 'configuration_invalid' satisfies OtpAuthErrorCode;

  constructor(message: string, options?: ErrorOptions) {
    super(`OtpAuthModule: ${message}`, options);
    this.name = 'OtpAuthConfigurationError';
  }
}

// ---- delivery -----------------------------------------------------------------------------------

/**
 * A delivery failure that retrying will not fix (a rejected address, a 4xx from the
 * provider). Senders throw it so the outbox stops retrying; any other error is retried.
 */
export class PermanentDeliveryError extends Error {
  readonly code = 'delivery_failed_permanently' satisfies OtpAuthErrorCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentDeliveryError';
  }
}

/** Why {@link NoRecipientError} was thrown. */
export type NoRecipientReason = 'no_recipient' | 'recipient_limit';

/**
 * Not a failure: the address has nowhere to send to (a user without a phone number on file), or
 * the destination's cap (`delivery.recipientLimit`) is reached. The module answers exactly as for
 * an unknown address (same status, body and response time, no 503), keeps the undelivered code so
 * the resend cooldown behaves alike, does not retry, and emits `code.not_sent`.
 */
export class NoRecipientError extends Error {
  readonly code = 'no_recipient' satisfies OtpAuthErrorCode;

  constructor(
    message: string,
    readonly reason: NoRecipientReason = 'no_recipient',
  ) {
    super(message);
    this.name = 'NoRecipientError';
  }
}

// ---- HTTP: 429 ----------------------------------------------------------------------------------

/**
 * A 429 with the wait in the body (`retry_after`) and, through `RetryAfterFilter`, the
 * `Retry-After` header.
 */
export abstract class RetryLaterException extends HttpException {
  abstract readonly code: OtpAuthErrorCode;

  protected constructor(
    message: string,
    /** Suggested wait, in seconds; also the `Retry-After` header. */
    readonly retryAfterSeconds: number,
  ) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        error: 'Too Many Requests',
        message,
        retry_after: retryAfterSeconds,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/** Answer to a refused request: 429 with a message that says how long to wait. */
export class TooManyRequestsException extends RetryLaterException {
  readonly code = 'rate_limited' satisfies OtpAuthErrorCode;

  constructor(retryAfterSeconds: number) {
    super(`Too many requests. Please try again in ${retryAfterSeconds} seconds.`, retryAfterSeconds);
  }
}

/** Thrown when an address asks for a new code inside the resend cooldown. */
export class ResendCooldownException extends RetryLaterException {
  readonly code = 'resend_cooldown' satisfies OtpAuthErrorCode;

  constructor(retryAfterSeconds: number) {
    super(`Please wait ${retryAfterSeconds} seconds before requesting another code.`, retryAfterSeconds);
  }
}

// ---- HTTP: 503 ----------------------------------------------------------------------------------

/**
 * A 503 with a suggested wait: something the module depends on (database, counter storage) cannot
 * be reached. `RetryAfterFilter` answers every subclass with `Retry-After`.
 */
export class OtpServiceUnavailableException extends HttpException {
  readonly code: OtpAuthErrorCode = 'service_unavailable';

  constructor(
    message: string,
    /** Suggested wait, in seconds; also the `Retry-After` header. */
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message,
        retry_after: retryAfterSeconds,
      },
      HttpStatus.SERVICE_UNAVAILABLE,
      options,
    );
  }
}

/**
 * The database behind the store cannot be reached (refused, reset, timed out). Answered as 503
 * with `Retry-After` by the module's exception filter (`RetryAfterFilter`), anywhere in
 * the app (the module's routes, and app routes behind `VerifiedUserGuard`). Nest gives an
 * exception to one filter only, and a global filter registered later comes first: with
 * `retryAfterFilter: false` the module registers none, and this `HttpException` (503) reaches
 * your own filters instead.
 */
export class OtpStoreUnavailableException extends OtpServiceUnavailableException {
  override readonly code = 'store_unavailable' satisfies OtpAuthErrorCode;

  constructor(
    /** Suggested wait, in seconds; also the `Retry-After` header. */
    retryAfterSeconds: number = STORE_UNAVAILABLE_RETRY_AFTER,
    options?: { cause?: unknown },
  ) {
    super(
      'Sign-in is briefly unavailable: the database cannot be reached. Please try again shortly.',
      retryAfterSeconds,
      options,
    );
  }
}

/** Answer when the shared counter storage is down and the policy is `'fail-closed'`. */
export class RateLimitUnavailableException extends OtpServiceUnavailableException {
  override readonly code = 'rate_limit_unavailable' satisfies OtpAuthErrorCode;

  constructor(retryAfterSeconds: number) {
    super('Sign-in is briefly unavailable. Please try again shortly.', retryAfterSeconds);
  }
}

// ---- rate-limit storage -------------------------------------------------------------------------

/**
 * Counter storage cannot answer: thrown by `FallbackRateLimitStorage` while the primary is
 * unreachable (request counters under `'fail-closed'`; exact markers under every policy), and by
 * `InMemoryRateLimitStorage` when it is full of live markers. The HTTP layer answers 503 with
 * `Retry-After` from {@link RateLimitUnavailableError.retryAfterMs}.
 */
export class RateLimitUnavailableError extends Error {
  override readonly name = 'RateLimitUnavailableError';
  readonly code = 'rate_limit_storage_unavailable' satisfies OtpAuthErrorCode;

  constructor(
    /** Suggested wait before retrying, in ms: until the primary is probed again. */
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super('Rate limiting is temporarily unavailable.', options);
  }
}

/** The primary rate-limit storage did not answer within `timeoutMs`. */
export class RateLimitStorageTimeoutError extends Error {
  override readonly name = 'RateLimitStorageTimeoutError';
  readonly code = 'rate_limit_storage_timeout' satisfies OtpAuthErrorCode;

  constructor(readonly timeoutMs: number) {
    super(`rate-limit storage did not answer within ${timeoutMs} ms`);
  }
}
