import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OtpDeliveryContext, type OtpSender } from './otp-sender.interface.js';
import { PermanentDeliveryError } from '../errors.js';

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

/** The JSON body {@link WebhookOtpSender} POSTs, as {@link verifyWebhookRequest} returns it. */
export interface WebhookOtpDelivery {
  /**
   * The message's id (`delivery_id`): the same on every retry of one message, new for every code.
   * Remember the ids you handled (at least until `expiresAt`) and answer a repeat with 2xx
   * without sending again.
   */
  readonly deliveryId: string;
  readonly email: string;
  readonly code: string;
  readonly purpose: string;
  /** `expires_at`, ISO 8601. */
  readonly expiresAt: string;
  readonly locale?: string;
}

/** Settings of {@link verifyWebhookRequest}. */
export interface VerifyWebhookRequestOptions {
  /**
   * Accept a timestamp this many seconds before or after now; older requests are refused as
   * possible replays. Each attempt is signed afresh, so retries are not refused.
   *
   * @default 300
   */
  toleranceSeconds?: number;
  /** The current time in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/** Request headers as Node (`req.headers` in Express, Fastify, Nest) or fetch (`Request.headers`) give them. */
export type WebhookRequestHeaders =
  Readonly<Record<string, string | readonly string[] | undefined>> | { get(name: string): string | null };

const DEFAULT_TOLERANCE_SECONDS = 300;

/**
 * Checks a request from {@link WebhookOtpSender} on the receiving side: a single well-formed
 * `x-otp-signature` that matches the raw body under `secret` (compared in constant time), a
 * single `x-otp-timestamp` within `toleranceSeconds` of now, and a body of the sender's shape.
 * Returns the delivery, or `undefined` for anything else (answer 401): it never throws on what
 * the request contains, so a missing or garbled header cannot turn into a 500.
 *
 * @param secret - The secret shared with the sender.
 * @param headers - The request headers; names in lower case for a plain object, as Node gives them.
 * @param rawBody - The body exactly as received; re-serialised JSON would not match the signature.
 */
export function verifyWebhookRequest(
  secret: string,
  headers: WebhookRequestHeaders,
  rawBody: string | Buffer,
  options: VerifyWebhookRequestOptions = {},
): WebhookOtpDelivery | undefined {
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!secret || !Number.isFinite(tolerance) || tolerance < 0) {
    // A configuration mistake, not request data: fail loudly rather than accept everything.
    throw new Error('verifyWebhookRequest: `secret` is required and `toleranceSeconds` must be >= 0.');
  }
  const timestamp = singleHeader(headers, WEBHOOK_TIMESTAMP_HEADER);
  const signature = singleHeader(headers, WEBHOOK_SIGNATURE_HEADER);
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) return undefined;
  if (signature === undefined || !/^sha256=[0-9a-f]{64}$/.test(signature)) return undefined;
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  if (Math.abs(now - Number(timestamp)) > tolerance) return undefined;
  if (typeof rawBody !== 'string' && !Buffer.isBuffer(rawBody)) return undefined;
  const body = typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8');
  const expected = Buffer.from(signWebhookBody(secret, timestamp, body));
  // Same length by the pattern above, which timingSafeEqual needs.
  if (!timingSafeEqual(expected, Buffer.from(signature))) return undefined;
  return parseDelivery(body);
}

/** One header's value; undefined when absent or repeated (a repeated signature is not ours). */
function singleHeader(headers: WebhookRequestHeaders, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  if (typeof headers.get === 'function') {
    // fetch joins repeated headers with ", ", which the patterns of the caller refuse.
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const value = (headers as Readonly<Record<string, unknown>>)[name];
  return typeof value === 'string' ? value : undefined;
}

function parseDelivery(body: string): WebhookOtpDelivery | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  const text = (key: string): string | undefined => {
    const value = fields[key];
    return typeof value === 'string' ? value : undefined;
  };
  const [deliveryId, email, code, purpose, expiresAt, locale] = [
    'delivery_id',
    'email',
    'code',
    'purpose',
    'expires_at',
    'locale',
  ].map(text);
  if (!deliveryId || !email || !code || !purpose || !expiresAt) return undefined;
  if (fields['locale'] !== undefined && locale === undefined) return undefined;
  return { deliveryId, email, code, purpose, expiresAt, ...(locale !== undefined && { locale }) };
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
 * Delivers codes by POSTing JSON `{delivery_id, email, code, purpose, expires_at}` (plus `locale`
 * when the client gave one) to a URL, signed so the receiver can tell the request came from this
 * service ({@link verifyWebhookRequest} checks it). `delivery_id` is the context's `deliveryId`
 * (one random UUID per send() call when the context has none), inside the signed body and the
 * same on every retry, so the receiver can drop duplicates.
 * A 2xx answer is a delivery. Network errors, timeouts, 408, 429 and 5xx are retried with
 * exponential backoff and jitter, each attempt with a fresh timestamp and signature; when the
 * retries run out the last error is thrown. Any other answer, including a redirect (not
 * followed: it would send the code elsewhere), throws {@link PermanentDeliveryError} at once.
 * Receivers should be idempotent (de-duplicate on `delivery_id`): an attempt that timed out may
 * still have been processed.
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
      // Fixed before the first attempt: every retry below sends this very body.
      delivery_id: context.deliveryId ?? randomUUID(),
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
