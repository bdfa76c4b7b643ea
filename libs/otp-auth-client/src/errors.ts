import { isRecord } from './jwt.js';
import type { OtpAuthRouteName } from './routes.js';

/**
 * Stable, machine-readable reason of an {@link OtpAuthError}. Derived from the server's status,
 * route and answer; the server's `message` text may change, these do not.
 *
 * | code | when |
 * |---|---|
 * | `invalid_code` | 401 from `verifyOtp` (wrong, expired, used or locked code, unknown address: one answer for all), or a wrong TOTP / backup code |
 * | `invalid_mfa_token` | 401 from `verifyMfa`: the `mfaToken` expired, was used, or ran out of guesses; start the sign-in again |
 * | `mfa_required` | 403: the route needs a two-factor session (`@RequireMfa()`, or `totp.required` for this user) |
 * | `reauthentication_required` | 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`: the action needs a recent sign-in (`maxAge`); refreshing cannot help, sign in again |
 * | `cooldown` | 429 from `requestOtp` inside the resend cooldown (`retryAfter`) |
 * | `rate_limited` | any other 429 (`retryAfter`) |
 * | `unauthorized` | any other 401: missing, invalid, expired or revoked token; from `refresh`, the session is over |
 * | `not_signed_in` | no request was made: the call needs a session and there is none |
 * | `forbidden` | any other 403, e.g. a cross-site request to a cookie route (list the page's origin in `cookie.allowedOrigins`) |
 * | `not_found` | 404, e.g. introspection is not enabled, or no pending TOTP enrolment |
 * | `conflict` | 409, e.g. TOTP is already active |
 * | `validation_failed` | 400; `details` holds the server's field messages |
 * | `service_unavailable` | 503: database or delivery down (`retryAfter` when given) |
 * | `server_error` | any other 5xx |
 * | `http_error` | any other non-2xx status |
 * | `invalid_response` | a 2xx answer without the fields the route promises (wrong `baseUrl`/`prefix`, a proxy's page, a server in another refresh-token delivery mode) |
 * | `network_error` | `fetch` itself failed (offline, DNS, refused, CORS); `status` is 0 |
 * | `aborted` | the call's `AbortSignal` fired; `status` is 0 |
 */
export type OtpAuthErrorCode =
  | 'invalid_code'
  | 'invalid_mfa_token'
  | 'mfa_required'
  | 'reauthentication_required'
  | 'cooldown'
  | 'rate_limited'
  | 'unauthorized'
  | 'not_signed_in'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'validation_failed'
  | 'service_unavailable'
  | 'server_error'
  | 'http_error'
  | 'invalid_response'
  | 'network_error'
  | 'aborted';

/** What an {@link OtpAuthError} is made of. */
export interface OtpAuthErrorInit {
  /** Stable reason. */
  readonly code: OtpAuthErrorCode;
  /** HTTP status of the answer; 0 when there was none. */
  readonly status: number;
  /** Human-readable text (the server's message when it sent one). */
  readonly message: string;
  /** Seconds to wait before retrying (`Retry-After`, else the body's `retry_after`). */
  readonly retryAfter?: number;
  /** The server's validation messages (400), or its message as one entry. */
  readonly details?: readonly string[];
  /** For `reauthentication_required`: the `max_age` (seconds) the route demands. */
  readonly maxAge?: number;
  /** The SDK route that failed, if the error came from one. */
  readonly route?: OtpAuthRouteName;
  /** The parsed answer body (JSON, or text), if any. */
  readonly body?: unknown;
  /** The underlying error (network failures, aborts). */
  readonly cause?: unknown;
}

const BRAND = Symbol.for('nestjs-otp-auth-client.OtpAuthError');

/**
 * The one error type the SDK throws for failed calls: an HTTP answer it did not expect, a
 * network failure or an abort. Switch on {@link OtpAuthError.code}; `status`, `retryAfter`,
 * `details` and `maxAge` say more.
 *
 * @example
 * ```ts
 * try {
 *   await auth.requestOtp({ email });
 * } catch (error) {
 *   if (isOtpAuthError(error) && (error.code === 'cooldown' || error.code === 'rate_limited')) {
 *     showMessage(`Try again in ${error.retryAfter ?? 60} s`);
 *   } else throw error;
 * }
 * ```
 */
export class OtpAuthError extends Error {
  /** Always `'OtpAuthError'`. */
  override readonly name = 'OtpAuthError';
  /** Stable reason; see {@link OtpAuthErrorCode}. */
  readonly code: OtpAuthErrorCode;
  /** HTTP status; 0 for `network_error`, `aborted` and `not_signed_in`. */
  readonly status: number;
  /** Seconds to wait before retrying, when the server said (429, 503). */
  readonly retryAfter: number | undefined;
  /** The server's messages: field errors for `validation_failed`, else its message. */
  readonly details: readonly string[];
  /** For `reauthentication_required`: how recent (seconds) the sign-in must be. */
  readonly maxAge: number | undefined;
  /** The SDK route that failed, if any. */
  readonly route: OtpAuthRouteName | undefined;
  /** The parsed answer body, if any. */
  readonly body: unknown;

  /** @param init - Code, status, message and the optional details. */
  constructor(init: OtpAuthErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.retryAfter = init.retryAfter;
    this.details = init.details ?? [];
    this.maxAge = init.maxAge;
    this.route = init.route;
    this.body = init.body;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * Whether a value is an {@link OtpAuthError}, also across copies of the SDK (an app that loads
 * both the ESM and the CommonJS build gets two classes; `instanceof` sees only one).
 *
 * @param value - Anything caught.
 * @returns `true` for SDK errors.
 */
export function isOtpAuthError(value: unknown): value is OtpAuthError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * Seconds from a `Retry-After` value: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 *
 * @param value - The header's value.
 * @param now - The current time in ms (for dates).
 * @returns Whole seconds (rounded up, at least 0), or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** The RFC 9470 error code of a route that needs a more recent sign-in. */
const INSUFFICIENT_USER_AUTHENTICATION = 'insufficient_user_authentication';

/**
 * Whether a 401 is the RFC 9470 step-up answer (`insufficient_user_authentication`), which a
 * refresh cannot fix (the refreshed token keeps its `auth_time`).
 *
 * @param headers - The answer's headers (`WWW-Authenticate`, if the browser exposes it).
 * @param body - The parsed body (the server repeats the error code there).
 */
export function isStepUpAnswer(headers: Headers, body: unknown): boolean {
  if ((headers.get('www-authenticate') ?? '').includes(INSUFFICIENT_USER_AUTHENTICATION)) return true;
  return isRecord(body) && body['error'] === INSUFFICIENT_USER_AUTHENTICATION;
}

/** The server's message(s): Nest answers `{statusCode, message: string | string[], error}`. */
function serverMessages(body: unknown): string[] {
  if (typeof body === 'string') return body.trim() ? [body.trim().slice(0, 500)] : [];
  if (!isRecord(body)) return [];
  const message = body['message'];
  if (typeof message === 'string') return [message];
  if (Array.isArray(message)) return message.filter((m): m is string => typeof m === 'string');
  return [];
}

// Texts the server module answers with (nestjs-otp-auth); matched only to tell apart answers that
// share a status. Every other distinction uses status, route and headers.
const INVALID_MFA_TOKEN = /two-factor challenge/i;
const RESEND_COOLDOWN = /requesting another code/i;
const MFA_REQUIRED = /two-factor authentication required/i;

/** The code for a non-2xx answer. */
function codeFor(
  route: OtpAuthRouteName | undefined,
  status: number,
  headers: Headers,
  body: unknown,
  messages: readonly string[],
): OtpAuthErrorCode {
  const text = messages.join(' ');
  switch (status) {
    case 400:
      return 'validation_failed';
    case 401:
      if (isStepUpAnswer(headers, body)) return 'reauthentication_required';
      if (route === 'verifyOtp') return 'invalid_code';
      if (route === 'verifyMfa') return INVALID_MFA_TOKEN.test(text) ? 'invalid_mfa_token' : 'invalid_code';
      // A wrong authenticator or backup code on the TOTP management routes ("Invalid two-factor code");
      // a bad access token there says "access token".
      if (
        (route === 'totp.confirm' || route === 'totp.disable' || route === 'totp.regenerateBackupCodes') &&
        /two-factor code/i.test(text)
      ) {
        return 'invalid_code';
      }
      return 'unauthorized';
    case 403:
      return MFA_REQUIRED.test(text) ? 'mfa_required' : 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 429:
      return route === 'requestOtp' && RESEND_COOLDOWN.test(text) ? 'cooldown' : 'rate_limited';
    case 503:
      return 'service_unavailable';
    default:
      return status >= 500 ? 'server_error' : 'http_error';
  }
}

/** `max_age=N` of a `WWW-Authenticate` step-up challenge. */
function maxAgeOf(headers: Headers): number | undefined {
  const match = /max_age="?(\d+)"?/.exec(headers.get('www-authenticate') ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * The {@link OtpAuthError} for a non-2xx answer of a route.
 *
 * @param route - The SDK route, or undefined for other URLs.
 * @param response - The answer (its body already read into `body`).
 * @param body - The parsed body.
 * @param now - Current time in ms (for an HTTP-date `Retry-After`).
 */
export function errorFromResponse(
  route: OtpAuthRouteName | undefined,
  response: Response,
  body: unknown,
  now: number = Date.now(),
): OtpAuthError {
  const messages = serverMessages(body);
  const code = codeFor(route, response.status, response.headers, body, messages);
  const bodyRetry = isRecord(body) && typeof body['retry_after'] === 'number' ? body['retry_after'] : undefined;
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'), now) ?? bodyRetry;
  return new OtpAuthError({
    code,
    status: response.status,
    message: messages.join('; ') || `${route ?? 'request'} failed with HTTP ${response.status}`,
    details: messages,
    route,
    body,
    ...(retryAfter !== undefined ? { retryAfter } : {}),
    ...(code === 'reauthentication_required' ? { maxAge: maxAgeOf(response.headers) } : {}),
  });
}

/** Whether a thrown value is an abort (`AbortError`, or `TimeoutError` from `AbortSignal.timeout`). */
function isAbort(error: unknown): boolean {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return name === 'AbortError' || name === 'TimeoutError';
}

/**
 * The {@link OtpAuthError} for a `fetch` that rejected (no answer at all).
 *
 * @param route - The SDK route, if any.
 * @param url - What was fetched (for the message).
 * @param error - What `fetch` threw.
 */
export function errorFromFetchFailure(route: OtpAuthRouteName | undefined, url: string, error: unknown): OtpAuthError {
  if (isOtpAuthError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return isAbort(error)
    ? new OtpAuthError({ code: 'aborted', status: 0, message: `Request to ${url} was aborted`, route, cause: error })
    : new OtpAuthError({
        code: 'network_error',
        status: 0,
        message: `Could not reach ${url}: ${reason}`,
        route,
        cause: error,
      });
}
