import {
  CrossTabCoordinator,
  runtimeCrossTabSupport,
  type CrossTabMessage,
  type CrossTabOptions,
  type LockManagerLike,
} from './cross-tab.js';
import { errorFromResponse, isOtpAuthError, isStepUpAnswer, OtpAuthError } from './errors.js';
import { decodeJwtPayload, isRecord } from './jwt.js';
import { DEFAULT_ROUTE_PREFIX, type OtpAuthRouteName } from './routes.js';
import { MemoryTokenStorage, type TokenStorage } from './storage.js';
import { expectOk, invalidResponse, readBody, Transport } from './transport.js';
import {
  systemClock,
  type AccessTokenClaims,
  type BackupCodesResult,
  type CallOptions,
  type Clock,
  type FetchLike,
  type LogoutAllResult,
  type ManageSecondFactorInput,
  type OtpAuthTotpApi,
  type RequestOtpInput,
  type RequestOtpResult,
  type SecondFactor,
  type Session,
  type SessionStatus,
  type SessionChangeEvent,
  type SessionChangeListener,
  type SignInResult,
  type SignOutReason,
  type TotpCodeInput,
  type TotpConfirmResult,
  type TotpDisableResult,
  type TotpSetupResult,
  type VerifyMfaInput,
  type VerifyOtpInput,
} from './types.js';

/** Where the refresh token lives: an HttpOnly cookie (browsers) or the client's {@link TokenStorage}. */
export type RefreshTokenDelivery = 'cookie' | 'body';

/** Options of {@link OtpAuthClient}. */
export interface OtpAuthClientOptions {
  /**
   * Origin (and optional path) of the service running the module: `https://auth.example.com`,
   * `https://example.com/api`. In a browser page, `''` (default) or a path (`/api`) calls the
   * page's own origin; elsewhere an absolute URL is required.
   */
  readonly baseUrl?: string;
  /** The module's `routePrefix`; default `/auth`. */
  readonly prefix?: string;
  /**
   * Must match the server's `refreshTokenDelivery` (a server in `both` works with either):
   * - `'cookie'` (default; browsers): the refresh token stays in the server's HttpOnly cookie,
   *   requests to the auth routes use `credentials: 'include'`, and the access token lives in
   *   memory only (never `localStorage`/`sessionStorage`); after a reload, {@link OtpAuthClient.restore}
   *   gets a new one from the cookie.
   * - `'body'` (Node, mobile, desktop): the refresh token comes in the JSON answers and goes
   *   back in the `refresh`/`logout` bodies; the client keeps both tokens in `storage`.
   */
  readonly refreshTokenDelivery?: RefreshTokenDelivery;
  /** Body mode only: where tokens are kept; default a {@link MemoryTokenStorage}. */
  readonly storage?: TokenStorage;
  /**
   * The `fetch` to use (default: the global one, looked up at each call). In Node with cookie
   * mode, pass one that keeps cookies.
   */
  readonly fetch?: FetchLike;
  /** Headers added to every auth-route request (e.g. `accept-language`). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Refresh this many seconds before the access token expires (capped at half its lifetime);
   * default 60.
   */
  readonly refreshLeeway?: number;
  /**
   * Refresh on a timer shortly before expiry (default true), so requests rarely wait. Without
   * it the client still refreshes when a request finds the token expiring, or on a 401.
   */
  readonly proactiveRefresh?: boolean;
  /**
   * Cross-tab coordination (BroadcastChannel + Web Locks): `true`, `false`, or settings.
   * Default: on in a browser page in cookie mode, off elsewhere (in Node, channels of one name
   * would join unrelated clients of one process). In body mode, turn it on only when the tabs
   * share one `storage`.
   */
  readonly crossTab?: boolean | CrossTabOptions;
  /** Time and timers (tests). */
  readonly clock?: Clock;
}

interface Current<TClaims extends object> {
  readonly session: Session<TClaims>;
  /** When this tab received the token (or the sender tab did), ms: with `expiresAt`, its lifetime. */
  readonly receivedAt: number;
}

/** Routes whose body carries a TOTP or backup code: a 401 there may mean a wrong code. */
const CARRIES_SECOND_FACTOR: ReadonlySet<OtpAuthRouteName> = new Set([
  'totp.confirm',
  'totp.disable',
  'totp.regenerateBackupCodes',
]);

/** A request still in flight counts as "expired" this close to the end. */
const EXPIRY_MARGIN_MS = 1_000;
/** Longest `setTimeout` delay (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function notSignedIn(route?: OtpAuthRouteName): OtpAuthError {
  return new OtpAuthError({
    code: 'not_signed_in',
    status: 0,
    route,
    message: 'Not signed in: sign in first (or call restore() after a page load).',
  });
}

/** Whether relative URLs resolve here (a page or worker `location`; Deno throws on reading it without `--location`). */
function hasLocation(): boolean {
  try {
    return typeof (globalThis as { location?: unknown }).location === 'object';
  } catch {
    return false;
  }
}

/** Reports a listener's exception without stopping the other listeners. */
function reportLater(error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === 'function') report(error);
  else
    setTimeout(() => {
      throw error;
    }, 0);
}

/** Whether a fetch body is a stream (readable once: such a request cannot be retried). */
function isStreamBody(body: RequestInit['body']): boolean {
  return typeof body === 'object' && body !== null && typeof (body as { getReader?: unknown }).getReader === 'function';
}

function secondFactorBody(input: SecondFactor): Record<string, unknown> {
  return input.backupCode !== undefined ? { backup_code: input.backupCode } : { code: input.code };
}

function stringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/**
 * The client of a nestjs-otp-auth service: one method per route the module mounts, a session
 * it keeps fresh, and {@link OtpAuthClient.fetch} for your own API calls.
 *
 * - **Single-flight refresh**: however many calls find the token expired or get a 401 at once,
 *   one `POST /refresh` runs and all of them wait for it; each retries once. When the server
 *   refuses the refresh token (401) the client signs out and every waiting call rejects with
 *   that error (`unauthorized`).
 * - **Proactive refresh**: a timer refreshes `refreshLeeway` seconds before `exp`.
 * - **Cross-tab** (browsers, cookie mode): one tab refreshes at a time (Web Lock) and shares the
 *   new access token over a `BroadcastChannel`; sign-in and sign-out reach every tab.
 *
 * @typeParam TClaims - Your custom claims (`getAdditionalClaims` on the server).
 *
 * @example
 * ```ts
 * const auth = new OtpAuthClient({ baseUrl: 'https://auth.example.com' });
 * await auth.requestOtp({ email });
 * const result = await auth.verifyOtp({ email, code });
 * if (result.type === 'mfa_required') await auth.verifyMfa({ mfaToken: result.mfaToken, code: totpCode });
 * const res = await auth.fetch('https://api.example.com/orders'); // Authorization added, refreshed on 401
 * ```
 */
export class OtpAuthClient<TClaims extends object = Record<string, unknown>> {
  /** Where the refresh token lives (the `refreshTokenDelivery` option). */
  readonly refreshTokenDelivery: RefreshTokenDelivery;
  /** The TOTP (authenticator app) routes. */
  readonly totp: OtpAuthTotpApi<TClaims>;

  private readonly transport: Transport;
  private readonly storage: TokenStorage | undefined;
  private readonly clock: Clock;
  private readonly leewayMs: number;
  private readonly proactiveRefresh: boolean;
  private readonly crossTab: CrossTabCoordinator | undefined;
  private readonly peerTimeout: number;
  private readonly listeners = new Set<SessionChangeListener<TClaims>>();
  private readonly waiters = new Set<() => void>();

  private state: SessionStatus = 'unknown';
  private current: Current<TClaims> | null = null;
  /** Bumped on every session change, so in-flight work can tell that the world moved on. */
  private generation = 0;
  private refreshing: Promise<Session<TClaims>> | null = null;
  private restoring: Promise<Session<TClaims> | null> | null = null;
  /** The error of the refresh that ended the session: what calls that were in flight then reject with. */
  private endedBy: OtpAuthError | undefined;
  private timer: unknown = undefined;
  private closed = false;

  /**
   * @param options - Where the service is and how the refresh token travels; see {@link OtpAuthClientOptions}.
   * @throws TypeError for an invalid option (a `storage` in cookie mode, a relative `baseUrl` outside a browser page).
   */
  constructor(options: OtpAuthClientOptions = {}) {
    const delivery = options.refreshTokenDelivery ?? 'cookie';
    if (delivery !== 'cookie' && delivery !== 'body') {
      throw new TypeError(`refreshTokenDelivery must be 'cookie' or 'body' (got ${String(delivery)})`);
    }
    if (delivery === 'cookie' && options.storage) {
      throw new TypeError(
        "storage is for refreshTokenDelivery: 'body'; in cookie mode the access token stays in memory and the refresh token in the HttpOnly cookie",
      );
    }
    const baseUrl = options.baseUrl ?? '';
    const inPage = hasLocation();
    if (!/^https?:\/\//i.test(baseUrl) && !(inPage && (baseUrl === '' || baseUrl.startsWith('/')))) {
      throw new TypeError(
        `baseUrl must be an absolute http(s) URL${inPage ? ', a path, or empty' : ' outside a browser page'} (got '${baseUrl}')`,
      );
    }
    const leeway = options.refreshLeeway ?? 60;
    if (!Number.isFinite(leeway) || leeway < 0) throw new TypeError('refreshLeeway must be a number of seconds >= 0');
    const prefix = options.prefix ?? DEFAULT_ROUTE_PREFIX;

    this.refreshTokenDelivery = delivery;
    this.clock = options.clock ?? systemClock;
    this.storage = delivery === 'body' ? (options.storage ?? new MemoryTokenStorage()) : undefined;
    this.leewayMs = leeway * 1000;
    this.proactiveRefresh = options.proactiveRefresh ?? true;
    this.transport = new Transport({
      baseUrl,
      prefix,
      fetch: options.fetch,
      headers: { ...options.headers },
      credentials: delivery === 'cookie' ? 'include' : undefined,
      clock: this.clock,
    });

    const support = runtimeCrossTabSupport();
    const settings: CrossTabOptions = typeof options.crossTab === 'object' ? options.crossTab : {};
    const wanted =
      options.crossTab === undefined ? delivery === 'cookie' && support.isBrowserPage : options.crossTab !== false;
    const createChannel = settings.createChannel ?? support.channel;
    this.peerTimeout = settings.peerTimeout ?? 150;
    if (wanted && createChannel) {
      const name =
        settings.channelName ?? `nestjs-otp-auth:${baseUrl.replace(/\/+$/, '')}/${prefix.replace(/^\/+|\/+$/g, '')}`;
      const locks: LockManagerLike | null = settings.locks === undefined ? (support.locks ?? null) : settings.locks;
      this.crossTab = new CrossTabCoordinator({
        channel: createChannel(name),
        locks,
        lockName: `${name}:refresh`,
        clock: this.clock,
        onMessage: (message) => this.onPeerMessage(message),
      });
    }

    this.totp = {
      setup: (callOptions) => this.totpSetup(callOptions),
      qrCode: (callOptions) => this.totpQrCode(callOptions),
      confirm: (input, callOptions) => this.totpConfirm(input, callOptions),
      disable: (input, callOptions) => this.totpDisable(input, callOptions),
      regenerateBackupCodes: (input, callOptions) => this.totpRegenerate(input, callOptions),
    };
  }

  // ---- state ---------------------------------------------------------------------------------

  /**
   * `unknown` until the client has looked for a session (first call, or {@link OtpAuthClient.restore});
   * then `signed_in` or `signed_out`.
   */
  get status(): SessionStatus {
    return this.state;
  }

  /**
   * The current session, or null. Synchronous; the same object until the session changes (a
   * bound function, so it can be passed around: `useSyncExternalStore(auth.onSessionChange, auth.getSession)`).
   */
  getSession = (): Session<TClaims> | null => this.current?.session ?? null;

  /**
   * A usable access token: the current one, refreshed first if it is about to expire; null when
   * signed out. Use it for transports {@link OtpAuthClient.fetch} does not cover (WebSocket
   * auth messages, EventSource URLs).
   *
   * @throws {@link OtpAuthError} `unauthorized` when the refresh it needed was refused (now signed out).
   */
  getAccessToken(): Promise<string | null> {
    return this.accessTokenForRequest();
  }

  /**
   * Calls `listener` on every sign-in, refresh and sign-out, in this tab or adopted from another
   * (`event.source`). Listeners run synchronously; one that throws does not stop the others (its
   * error is reported asynchronously).
   *
   * @returns A function that removes the listener.
   * @example React: `useSyncExternalStore(auth.onSessionChange, auth.getSession)` (both are bound).
   */
  onSessionChange = (listener: SessionChangeListener<TClaims>): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /**
   * Looks for an existing session once: in cookie mode, asks the other tabs for their access
   * token, else calls `POST /refresh` with the cookie; in body mode, loads the storage. Calls
   * that need a token do this on their own; call it at startup to render the right page.
   *
   * @returns The session, or null when there is none (no cookie, refused refresh token).
   * @throws {@link OtpAuthError} `network_error`, `service_unavailable`: could not tell; try again.
   */
  restore(): Promise<Session<TClaims> | null> {
    if (this.state !== 'unknown') return Promise.resolve(this.getSession());
    if (!this.restoring) {
      const restoring: Promise<Session<TClaims> | null> = this.runRestore().finally(() => {
        if (this.restoring === restoring) this.restoring = null;
      });
      this.restoring = restoring;
    }
    return this.restoring;
  }

  /**
   * Stops the refresh timer and the cross-tab channel and removes every listener. The client
   * still works for explicit calls afterwards, without background activity.
   */
  close(): void {
    this.closed = true;
    this.clearTimer();
    this.crossTab?.close();
    this.listeners.clear();
    this.wake();
  }

  // ---- routes --------------------------------------------------------------------------------

  /**
   * `POST /request-otp`: sends a sign-in code to the address. The answer is the same for every
   * address (the server does not tell whether an account exists).
   *
   * @throws {@link OtpAuthError} `cooldown` or `rate_limited` (see `retryAfter`), `validation_failed`,
   *   `service_unavailable` (delivery failed; nothing was stored).
   */
  async requestOtp(input: RequestOtpInput, options: CallOptions = {}): Promise<RequestOtpResult> {
    const body: Record<string, unknown> = { email: input.email };
    if (input.locale !== undefined) body['locale'] = input.locale;
    const response = await this.transport.request('requestOtp', { body, signal: options.signal });
    const data = await expectOk('requestOtp', response, this.clock);
    if (!isRecord(data) || typeof data['message'] !== 'string' || typeof data['expires_in'] !== 'number') {
      throw invalidResponse('requestOtp', response.status, 'no message/expires_in', data);
    }
    return {
      message: data['message'],
      expiresIn: data['expires_in'],
      ...(typeof data['dev_code'] === 'string' ? { devCode: data['dev_code'] } : {}),
    };
  }

  /**
   * `POST /verify-otp`: exchanges the emailed code for a session, or, for users with TOTP, for
   * an MFA challenge to complete with {@link OtpAuthClient.verifyMfa}.
   *
   * @returns `{ type: 'signed_in', session }` or `{ type: 'mfa_required', mfaToken, expiresIn }`.
   * @throws {@link OtpAuthError} `invalid_code` (one answer for wrong, expired, used, locked or unknown),
   *   `rate_limited`, `validation_failed`, `forbidden` (cross-site page not in `cookie.allowedOrigins`).
   */
  async verifyOtp(input: VerifyOtpInput, options: CallOptions = {}): Promise<SignInResult<TClaims>> {
    const response = await this.transport.request('verifyOtp', {
      body: { email: input.email, code: input.code },
      signal: options.signal,
    });
    const data = await expectOk('verifyOtp', response, this.clock);
    if (isRecord(data) && data['mfa_required'] === true) {
      if (typeof data['mfa_token'] !== 'string' || typeof data['expires_in'] !== 'number') {
        throw invalidResponse('verifyOtp', response.status, 'an MFA challenge without mfa_token', data);
      }
      return { type: 'mfa_required', mfaToken: data['mfa_token'], expiresIn: data['expires_in'] };
    }
    const session = await this.install('verifyOtp', response.status, data, 'signed_in', 'this_tab');
    return { type: 'signed_in', session };
  }

  /**
   * `POST /totp/verify`: completes a two-factor sign-in with the `mfaToken` and a current
   * authenticator code or a backup code.
   *
   * @throws {@link OtpAuthError} `invalid_code` (try again), `invalid_mfa_token` (expired, used or
   *   out of guesses: start over with `requestOtp`), `rate_limited`, `validation_failed`.
   */
  async verifyMfa(input: VerifyMfaInput, options: CallOptions = {}): Promise<Session<TClaims>> {
    const response = await this.transport.request('verifyMfa', {
      body: { mfa_token: input.mfaToken, ...secondFactorBody(input) },
      signal: options.signal,
    });
    const data = await expectOk('verifyMfa', response, this.clock);
    return this.install('verifyMfa', response.status, data, 'signed_in', 'this_tab');
  }

  /**
   * `POST /refresh`: a new access token (and a rotated refresh token). Single-flight: callers
   * while one runs share it; across tabs, one tab refreshes and the others adopt its token.
   * You rarely need to call it: {@link OtpAuthClient.fetch} and the timer do.
   *
   * @throws {@link OtpAuthError} `unauthorized`: the server refused the refresh token (expired,
   *   revoked, reused, session too old); the client is signed out. `not_signed_in` in body mode
   *   without a stored refresh token. `network_error` / `service_unavailable`: still signed in.
   */
  refresh(): Promise<Session<TClaims>> {
    if (!this.refreshing) {
      const refreshing: Promise<Session<TClaims>> = this.runRefresh().finally(() => {
        if (this.refreshing === refreshing) this.refreshing = null;
      });
      this.refreshing = refreshing;
    }
    return this.refreshing;
  }

  /**
   * `POST /logout`: ends this session on the server (refresh token and access token) and signs
   * out here and in the other tabs. The local sign-out happens even if the request fails (then
   * the error is rethrown: the server-side session may live until it expires).
   */
  async logout(options: CallOptions = {}): Promise<void> {
    if (this.refreshing) await this.refreshing.catch(() => undefined);
    const accessToken = this.current?.session.accessToken ?? null;
    try {
      const refreshToken = this.storage ? (await this.storage.load())?.refreshToken : undefined;
      const response = await this.transport.request('logout', {
        bearer: accessToken,
        signal: options.signal,
        ...(refreshToken ? { body: { refresh_token: refreshToken } } : {}),
      });
      await expectOk('logout', response, this.clock);
    } finally {
      await this.endSession('logout', 'this_tab', true);
    }
  }

  /**
   * `POST /logout-all`: ends every session of the user, on every device, and signs out here.
   *
   * @throws {@link OtpAuthError} `not_signed_in`, `unauthorized`.
   */
  async logoutAll(options: CallOptions = {}): Promise<LogoutAllResult> {
    const { data, status } = await this.authorizedJson('logoutAll', undefined, options);
    await this.endSession('logout_all', 'this_tab', true);
    if (!isRecord(data) || typeof data['revoked_sessions'] !== 'number') {
      throw invalidResponse('logoutAll', status, 'no revoked_sessions', data);
    }
    return { revokedSessions: data['revoked_sessions'] };
  }

  /**
   * `fetch` with the session's access token: adds `Authorization: Bearer …` (unless the request
   * already has an `Authorization` header, which is then sent as is), refreshes first if the
   * token is about to expire, and on a 401 refreshes (single-flight) and retries once. A 401
   * that asks for a more recent sign-in (`insufficient_user_authentication`) is returned as is:
   * refreshing cannot help. Signed out, the request goes without a token.
   *
   * Resolves with the final answer like `fetch` (any status). Rejects with {@link OtpAuthError}:
   * `network_error`/`aborted` where `fetch` would reject, `unauthorized` when the refresh it
   * needed was refused (the client is now signed out). A request with a stream body cannot be
   * replayed, so its 401 is returned without a retry.
   *
   * @param input - URL or `Request`, as for `fetch` (relative URLs resolve against the page).
   * @param init - As for `fetch`.
   */
  async fetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const isRequest = typeof Request === 'function' && input instanceof Request;
    const headers = new Headers(isRequest ? input.headers : undefined);
    new Headers(init.headers).forEach((value, key) => headers.set(key, value));
    if (headers.has('authorization')) return this.transport.send(undefined, input, init);
    return this.authorized(
      (token) => {
        const attempt = new Headers(headers);
        if (token) attempt.set('authorization', `Bearer ${token}`);
        return this.transport.send(undefined, isRequest ? input.clone() : input, { ...init, headers: attempt });
      },
      !isStreamBody(init.body),
      false,
    );
  }

  // ---- TOTP ----------------------------------------------------------------------------------

  private async totpSetup(options: CallOptions = {}): Promise<TotpSetupResult> {
    const { data, status } = await this.authorizedJson('totp.setup', undefined, options);
    if (
      !isRecord(data) ||
      typeof data['secret'] !== 'string' ||
      typeof data['otpauth_url'] !== 'string' ||
      typeof data['qr_code'] !== 'string'
    ) {
      throw invalidResponse('totp.setup', status, 'no secret/otpauth_url/qr_code', data);
    }
    return { secret: data['secret'], otpauthUrl: data['otpauth_url'], qrCode: data['qr_code'] };
  }

  private async totpQrCode(options: CallOptions = {}): Promise<Blob> {
    const response = await this.authorized(
      (token) => this.transport.request('totp.qrCode', { bearer: token, signal: options.signal }),
      true,
      true,
    );
    if (!response.ok) throw errorFromResponse('totp.qrCode', response, await readBody(response), this.clock.now());
    return response.blob();
  }

  private async totpConfirm(input: TotpCodeInput, options: CallOptions = {}): Promise<TotpConfirmResult<TClaims>> {
    const { data, status } = await this.authorizedJson('totp.confirm', { code: input.code }, options);
    if (!isRecord(data) || !stringArray(data['backup_codes'])) {
      throw invalidResponse('totp.confirm', status, 'no backup_codes', data);
    }
    const backupCodes = Object.freeze([...data['backup_codes']]);
    const session = await this.install('totp.confirm', status, data, 'signed_in', 'this_tab');
    return { backupCodes, session };
  }

  private async totpDisable(input: ManageSecondFactorInput, options: CallOptions = {}): Promise<TotpDisableResult> {
    const body = { ...secondFactorBody(input), ...(input.endOtherSessions ? { end_other_sessions: true } : {}) };
    const { data } = await this.authorizedJson('totp.disable', body, options);
    const revoked = isRecord(data) && typeof data['revoked_sessions'] === 'number' ? data['revoked_sessions'] : 0;
    return { revokedSessions: revoked };
  }

  private async totpRegenerate(input: ManageSecondFactorInput, options: CallOptions = {}): Promise<BackupCodesResult> {
    const body = { ...secondFactorBody(input), ...(input.endOtherSessions ? { end_other_sessions: true } : {}) };
    const { data, status } = await this.authorizedJson('totp.regenerateBackupCodes', body, options);
    if (!isRecord(data) || !stringArray(data['backup_codes'])) {
      throw invalidResponse('totp.regenerateBackupCodes', status, 'no backup_codes', data);
    }
    return {
      backupCodes: Object.freeze([...data['backup_codes']]),
      revokedSessions: typeof data['revoked_sessions'] === 'number' ? data['revoked_sessions'] : 0,
    };
  }

  // ---- the authenticated request ---------------------------------------------------------------

  /** An authenticated call of a JSON route; the parsed 2xx body. */
  private async authorizedJson(
    route: OtpAuthRouteName,
    body: Record<string, unknown> | undefined,
    options: CallOptions,
  ): Promise<{ data: unknown; status: number }> {
    const response = await this.authorized(
      (token) => this.transport.request(route, { body, bearer: token, signal: options.signal }),
      true,
      true,
      route,
    );
    return { data: await expectOk(route, response, this.clock), status: response.status };
  }

  /**
   * Sends with the current token; on a 401 that refused the token (not a step-up answer, not a
   * wrong second factor) gets a newer token (single-flight refresh, or the one another call or
   * tab already got) and sends once more.
   */
  private async authorized(
    send: (token: string | null) => Promise<Response>,
    retryable: boolean,
    requireSession: boolean,
    route?: OtpAuthRouteName,
  ): Promise<Response> {
    const token = await this.accessTokenForRequest();
    if (token === null && requireSession) throw notSignedIn(route);
    const generation = this.generation;
    const first = await send(token);
    if (first.status !== 401 || !retryable || !(await this.tokenWasRefused(first, route))) return first;
    const fresh = await this.tokenAfterRejection(token, generation);
    if (fresh === null) return first;
    first.body?.cancel().catch(() => undefined);
    return send(fresh);
  }

  /**
   * Whether a 401 means "this access token is not (or no longer) valid", which a refresh fixes.
   * Not for the step-up answer (a refreshed token keeps its `auth_time`). On the routes that
   * carry a second factor, only when the answer says so (the guard refused the token before the
   * code was looked at): a wrong code is not retried, which would spend a second guess.
   * Reads a copy of the body; the answer stays readable.
   */
  private async tokenWasRefused(response: Response, route: OtpAuthRouteName | undefined): Promise<boolean> {
    if (isStepUpAnswer(response.headers, undefined)) return false;
    let body: unknown;
    try {
      body = await readBody(response.clone());
    } catch {
      body = undefined;
    }
    if (isStepUpAnswer(response.headers, body)) return false;
    if (route !== undefined && CARRIES_SECOND_FACTOR.has(route)) {
      return isRecord(body) && typeof body['message'] === 'string' && /access token/i.test(body['message']);
    }
    return true;
  }

  /**
   * The token to retry a request that got a 401 with `sent`: one that replaced it meanwhile,
   * else a refreshed one; null when there is nothing better (return the 401).
   */
  private async tokenAfterRejection(sent: string | null, generation: number): Promise<string | null> {
    if (this.generation !== generation) {
      const latest = this.current?.session.accessToken ?? null;
      if (latest !== null && latest !== sent) return latest;
      // The session ended while this request was in flight (the refresh that ended it, or a logout).
      if (latest === null && sent !== null) throw this.endedBy ?? notSignedIn();
      return null;
    }
    if (sent === null) return null;
    const refreshed = await this.refresh();
    return refreshed.accessToken === sent ? null : refreshed.accessToken;
  }

  /** The token for a request: restores first if need be; refreshes if about to expire. */
  private async accessTokenForRequest(): Promise<string | null> {
    if (this.state === 'unknown') await this.restore();
    const current = this.current;
    if (!current) return null;
    const { accessToken, expiresAt } = current.session;
    const now = this.clock.now();
    if (now < expiresAt - this.leewayFor(current)) return accessToken;
    if (now < expiresAt - EXPIRY_MARGIN_MS) {
      // Expiring but usable: refresh in the background, do not make this request wait.
      this.refresh().catch(() => undefined);
      return accessToken;
    }
    try {
      return (await this.refresh()).accessToken;
    } catch (error) {
      // Not a refused refresh token (that signed us out): the token may still be valid for a moment.
      if (this.current?.session.accessToken === accessToken && this.clock.now() < expiresAt) return accessToken;
      throw error;
    }
  }

  // ---- refresh and restore ---------------------------------------------------------------------

  private async runRefresh(): Promise<Session<TClaims>> {
    const generation = this.generation;
    const work = async (): Promise<Session<TClaims>> => {
      if (this.generation !== generation) {
        // Changed while waiting for the lock: another tab shared a token, or a sign-in or sign-out here.
        if (this.current && this.isFresh(this.current)) return this.current.session;
        if (this.state === 'signed_out') throw this.endedBy ?? notSignedIn('refresh');
      }
      let refreshToken: string | undefined;
      if (this.storage) {
        const stored = await this.storage.load();
        if (!stored) {
          await this.endSession('session_ended', 'this_tab', this.state === 'signed_in');
          throw notSignedIn('refresh');
        }
        const adopted = this.adoptStored(stored.accessToken, stored.expiresAt);
        if (adopted) return adopted;
        refreshToken = stored.refreshToken;
      }
      const response = await this.transport.request(
        'refresh',
        refreshToken ? { body: { refresh_token: refreshToken } } : {},
      );
      const body = await readBody(response);
      if (!response.ok) {
        const error = errorFromResponse('refresh', response, body, this.clock.now());
        if (response.status === 401 && this.generation === generation) {
          this.endedBy = error;
          await this.endSession('session_ended', 'this_tab', this.state === 'signed_in');
        }
        throw error;
      }
      // The session changed while the request ran. Another session (a sign-in here or in another
      // tab): keep it, ours is stale. The same session (another tab's token for it): install ours
      // anyway, it is at least as new, and in body mode its refresh token is the one to keep.
      if (this.generation !== generation && this.current) {
        const token = isRecord(body) ? body['access_token'] : undefined;
        const sid = typeof token === 'string' ? decodeJwtPayload(token)?.['sid'] : undefined;
        if (sid === undefined || sid !== this.current.session.claims.sid) return this.current.session;
      }
      const signedIn = this.state === 'signed_in';
      return this.install(
        'refresh',
        response.status,
        body,
        signedIn ? 'refreshed' : 'signed_in',
        signedIn ? 'this_tab' : 'restore',
      );
    };
    return this.crossTab ? this.crossTab.exclusive(work) : work();
  }

  /**
   * Body mode, under the lock: tokens in the storage that another client (sharing it) saved after
   * ours, still fresh, are adopted instead of rotating the refresh token a second time.
   */
  private adoptStored(accessToken: string, expiresAt: number): Session<TClaims> | null {
    if (this.current?.session.accessToken === accessToken) return null;
    const session = this.tryBuildSession(accessToken, expiresAt);
    if (!session) return null;
    const candidate: Current<TClaims> = { session, receivedAt: this.estimateReceivedAt(session) };
    if (!this.isFresh(candidate)) return null;
    const signedIn = this.state === 'signed_in';
    this.apply(candidate);
    this.emit(
      signedIn
        ? { type: 'refreshed', session, source: 'other_tab' }
        : { type: 'signed_in', session, source: 'restore' },
    );
    return session;
  }

  private async runRestore(): Promise<Session<TClaims> | null> {
    if (this.storage) {
      const stored = await this.storage.load();
      if (this.state !== 'unknown') return this.getSession();
      const session = stored ? this.tryBuildSession(stored.accessToken, stored.expiresAt) : null;
      if (!session) {
        this.state = 'signed_out';
        return null;
      }
      this.apply({ session, receivedAt: this.estimateReceivedAt(session) });
      this.emit({ type: 'signed_in', session, source: 'restore' });
      return session;
    }
    if (this.crossTab && this.peerTimeout > 0) {
      this.crossTab.post({ type: 'query' });
      await this.waitForChange(this.peerTimeout);
      if (this.state !== 'unknown') return this.getSession();
    }
    try {
      return await this.refresh();
    } catch (error) {
      if (isOtpAuthError(error) && (error.code === 'unauthorized' || error.code === 'not_signed_in')) {
        if (this.state === 'unknown') this.state = 'signed_out';
        return this.getSession();
      }
      throw error;
    }
  }

  // ---- session bookkeeping -------------------------------------------------------------------

  /** Takes a token answer: validates it, saves it (body mode), makes it current, tells listeners and tabs. */
  private async install(
    route: OtpAuthRouteName,
    status: number,
    body: unknown,
    type: 'signed_in' | 'refreshed',
    source: 'this_tab' | 'restore',
  ): Promise<Session<TClaims>> {
    if (!isRecord(body) || typeof body['access_token'] !== 'string') {
      throw invalidResponse(route, status, 'no access_token', body);
    }
    const accessToken = body['access_token'];
    const receivedAt = this.clock.now();
    const expiresIn = typeof body['expires_in'] === 'number' ? body['expires_in'] : undefined;
    const session = this.tryBuildSession(
      accessToken,
      expiresIn !== undefined ? receivedAt + expiresIn * 1000 : undefined,
    );
    if (!session) throw invalidResponse(route, status, 'the access token is not a JWT with sub and exp');
    if (this.storage) {
      const refreshToken = body['refresh_token'];
      if (typeof refreshToken !== 'string' || refreshToken === '') {
        throw invalidResponse(
          route,
          status,
          "no refresh_token in the body: the server delivers it as a cookie; use refreshTokenDelivery: 'cookie', or set the server's refreshTokenDelivery to 'body' or 'both'",
        );
      }
      await this.storage.save({ accessToken, refreshToken, expiresAt: session.expiresAt });
    }
    this.endedBy = undefined;
    this.apply({ session, receivedAt });
    this.emit(type === 'refreshed' ? { type, session, source: 'this_tab' } : { type, session, source });
    this.crossTab?.post({ type: 'session', kind: type, accessToken, expiresAt: session.expiresAt, receivedAt });
    return session;
  }

  private tryBuildSession(accessToken: string, expiresAt: number | undefined): Session<TClaims> | null {
    const claims = decodeJwtPayload(accessToken);
    if (!claims || typeof claims['sub'] !== 'string') return null;
    const exp = expiresAt ?? (typeof claims['exp'] === 'number' ? claims['exp'] * 1000 : undefined);
    if (exp === undefined || !Number.isFinite(exp)) return null;
    return Object.freeze({
      accessToken,
      expiresAt: exp,
      userId: claims['sub'],
      claims: Object.freeze(claims) as AccessTokenClaims & TClaims,
    });
  }

  /** For a token received elsewhere (storage): its lifetime from `exp - iat`. */
  private estimateReceivedAt(session: Session<TClaims>): number {
    const { exp, iat } = session.claims;
    const lifetime =
      typeof exp === 'number' && typeof iat === 'number' && exp > iat ? (exp - iat) * 1000 : 2 * this.leewayMs;
    return session.expiresAt - lifetime;
  }

  private leewayFor(current: Current<TClaims>): number {
    return Math.min(this.leewayMs, Math.max(0, (current.session.expiresAt - current.receivedAt) / 2));
  }

  private isFresh(current: Current<TClaims>): boolean {
    return this.clock.now() < current.session.expiresAt - this.leewayFor(current);
  }

  /** Makes a session current (no event). */
  private apply(current: Current<TClaims>): void {
    this.current = current;
    this.state = 'signed_in';
    this.generation++;
    this.schedule();
    this.wake();
  }

  private async endSession(reason: SignOutReason, source: 'this_tab' | 'other_tab', broadcast: boolean): Promise<void> {
    const wasSignedIn = this.state === 'signed_in';
    this.clearTimer();
    this.current = null;
    this.state = 'signed_out';
    this.generation++;
    this.wake();
    if (broadcast) this.crossTab?.post({ type: 'signed_out', reason });
    if (wasSignedIn) this.emit({ type: 'signed_out', session: null, reason, source });
    if (this.storage && source === 'this_tab') await this.storage.clear();
  }

  private emit(event: SessionChangeEvent<TClaims>): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        reportLater(error);
      }
    }
  }

  private onPeerMessage(message: CrossTabMessage): void {
    switch (message.type) {
      case 'session': {
        const current = this.current;
        if (
          current &&
          (current.session.accessToken === message.accessToken || message.expiresAt < current.session.expiresAt)
        ) {
          return;
        }
        const session = this.tryBuildSession(message.accessToken, message.expiresAt);
        if (!session) return;
        const signedIn = this.state === 'signed_in';
        this.endedBy = undefined;
        this.apply({ session, receivedAt: message.receivedAt });
        this.emit(
          signedIn && message.kind === 'refreshed'
            ? { type: 'refreshed', session, source: 'other_tab' }
            : { type: 'signed_in', session, source: 'other_tab' },
        );
        return;
      }
      case 'signed_out':
        if (this.state === 'signed_in') void this.endSession(message.reason, 'other_tab', false);
        return;
      case 'query':
        if (this.current && this.isFresh(this.current)) {
          const { session, receivedAt } = this.current;
          this.crossTab?.post({
            type: 'session',
            kind: 'refreshed',
            accessToken: session.accessToken,
            expiresAt: session.expiresAt,
            receivedAt,
          });
        }
        return;
      default:
        return;
    }
  }

  // ---- timers ------------------------------------------------------------------------------------

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Arms the proactive refresh for the current token. */
  private schedule(delayOverride?: number): void {
    this.clearTimer();
    const current = this.current;
    if (!this.proactiveRefresh || this.closed || !current) return;
    const leeway = this.leewayFor(current);
    let delay = delayOverride ?? current.session.expiresAt - leeway - this.clock.now();
    // Tabs that share a token would all fire at once; the lock serializes them, this spreads them.
    if (this.crossTab && delayOverride === undefined) delay -= Math.random() * Math.min(2_000, leeway / 4);
    const generation = this.generation;
    this.timer = this.clock.setTimeout(() => this.onTimer(generation), Math.min(MAX_TIMER_MS, Math.max(0, delay)));
  }

  private onTimer(generation: number): void {
    this.timer = undefined;
    if (this.closed || generation !== this.generation) return;
    this.refresh().catch(() => {
      // A refused refresh token signed us out already. Otherwise (network, 503) try again while the token lives.
      const current = this.current;
      if (this.closed || !current || this.generation !== generation) return;
      const left = current.session.expiresAt - this.clock.now();
      if (left > EXPIRY_MARGIN_MS) this.schedule(Math.min(30_000, Math.max(1_000, left / 2)));
    });
  }

  /** Resolves on the next session change, or after `ms`. */
  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.clock.clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
