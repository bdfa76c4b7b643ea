import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentDeliveryError, type OtpDeliveryContext, type OtpSender } from './otp-sender.interface.js';

/** Settings of {@link WebhookOtpSender}. */
export interface WebhookOtpSenderOptions {
  /** Where to POST. */
  url: string;
  /** Key of the HMAC-SHA256 signature header; share it with the receiver. */
  secret: string;
  /**
   * Abort each attempt after this many milliseconds. Default 5000. With retries, `send()` can
   * take up to `(retries + 1) × timeoutMs` plus the backoff delays.
   */
  timeoutMs?: number;
  /** Further attempts after a network error, a timeout, 408, 429 or 5xx; 0 to 10. Default 2. */
  retries?: number;
  /** Delay before the first retry; it doubles for each further one (at most 5 s), with jitter. Default 200. */
  retryDelayMs?: number;
}

/** Header carrying `sha256=<hex HMAC of "<timestamp>.<body>">`. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-otp-signature';
/** Header carrying the Unix time (seconds) the signature covers; receivers reject old ones. */
export const WEBHOOK_TIMESTAMP_HEADER = 'x-otp-timestamp';

/** Signs a webhook body the way {@link WebhookOtpSender} does; for receivers and tests. */
export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Backoff delays and honoured `Retry-After` values stop here; a longer wait is the caller's business. */
const MAX_RETRY_DELAY_MS = 5000;
const MAX_RETRIES = 10;

/** A failed attempt that another attempt may fix. */
interface RetryableFailure {
  readonly error: Error;
  /** What a `Retry-After` header asked for. */
  readonly retryAfterMs?: number;
}

/**
 * Delivers codes by POSTing JSON `{email, code, purpose, expires_at}` (plus `locale` when the
 * client gave one) to a URL, signed so the receiver can tell the request came from this service.
 * A 2xx answer is a delivery. Network errors, timeouts, 408, 429 and 5xx are retried with
 * exponential backoff and jitter, each attempt with a fresh timestamp and signature; when the
 * retries run out the last error is thrown. Any other answer, including a redirect (not
 * followed: it would send the code elsewhere), throws {@link PermanentDeliveryError} at once.
 * Receivers should be idempotent: an attempt that timed out may still have been processed.
 */
export class WebhookOtpSender implements OtpSender {
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(private readonly options: WebhookOtpSenderOptions) {
    if (!/^https?:\/\//.test(options.url)) throw new Error('WebhookOtpSender: `url` must be an http(s) URL.');
    if (!options.secret) throw new Error('WebhookOtpSender: `secret` is required to sign requests.');
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) {
      throw new Error('WebhookOtpSender: `timeoutMs` must be a positive integer (milliseconds).');
    }
    if (!Number.isInteger(this.retries) || this.retries < 0 || this.retries > MAX_RETRIES) {
      throw new Error(`WebhookOtpSender: \`retries\` must be an integer from 0 to ${MAX_RETRIES}.`);
    }
    if (!Number.isInteger(this.retryDelayMs) || this.retryDelayMs < 0) {
      throw new Error('WebhookOtpSender: `retryDelayMs` must be a non-negative integer (milliseconds).');
    }
  }

  async send(email: string, code: string, context: OtpDeliveryContext): Promise<void> {
    const body = JSON.stringify({
      email,
      code,
      purpose: context.purpose,
      expires_at: context.expiresAt.toISOString(),
      ...(context.locale !== undefined && { locale: context.locale }),
    });
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attempt(body);
      if (!failure) return;
      const retryAfterMs = failure.retryAfterMs ?? 0;
      const tooLong = retryAfterMs > MAX_RETRY_DELAY_MS;
      if (attempt > this.retries || tooLong) {
        const notes = [
          ...(attempt > 1 ? [`${attempt} attempts`] : []),
          ...(tooLong ? [`Retry-After ${Math.ceil(retryAfterMs / 1000)} s is too long to wait`] : []),
        ];
        const suffix = notes.length ? ` (${notes.join('; ')})` : '';
        throw new Error(`${failure.error.message}${suffix}`, { cause: failure.error.cause });
      }
      await sleep(Math.max(retryAfterMs, this.backoff(attempt)));
    }
  }

  /** One signed POST: nothing on success, a failure worth retrying, or a thrown permanent one. */
  private async attempt(body: string): Promise<RetryableFailure | undefined> {
    // Fresh per attempt, so a retry is not rejected as a stale or replayed signature.
    const timestamp = Math.floor(Date.now() / 1000).toString();
    let response: Response;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
          [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(this.options.secret, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // Drain the body so the connection can be reused.
      await response.arrayBuffer().catch(() => undefined);
    } catch (error) {
      const reason = (error as { name?: unknown } | null)?.name === 'TimeoutError' ? 'timed out' : 'failed';
      return { error: new Error(`webhook request ${reason}`, { cause: error }) };
    }
    if (response.ok) return undefined;
    const error = new Error(`webhook answered ${response.status}`);
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      return { error, retryAfterMs: retryAfterMs(response.headers.get('retry-after')) };
    }
    throw new PermanentDeliveryError(error.message);
  }

  /** `retryDelayMs × 2^(attempt-1)`, capped, then jittered into its upper half so retries spread out. */
  private backoff(attempt: number): number {
    const delay = Math.min(MAX_RETRY_DELAY_MS, this.retryDelayMs * 2 ** (attempt - 1));
    return Math.round(delay / 2 + Math.random() * (delay / 2));
  }
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
