// Test doubles for the unit tests: a fake clock, a fake auth server behind a fake fetch, a fake
// BroadcastChannel bus and a fake Web Locks manager. Not part of the package (excluded from the build).
import type { BroadcastChannelLike, LockManagerLike } from '../cross-tab.js';
import type { Clock, FetchLike } from '../types.js';

/** Waits for a real macrotask, so pending promise chains and fake deliveries run. */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A clock whose time moves only with {@link FakeClock.advance}. */
export class FakeClock implements Clock {
  private time = Date.UTC(2026, 11, 4, 12, 0, 0);
  private nextId = 1;
  private timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Pending timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward, running due timers in order (and letting their promise chains settle). */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
      await tick();
    }
    this.time = target;
    await tick();
  }
}

/** base64url of a JSON value. */
function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsigned JWT with these claims (the client never verifies). */
export function jwt(claims: Record<string, unknown>): string {
  return `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}.c2lnbmF0dXJl`;
}

export interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | null;
  readonly body: unknown;
  readonly credentials: string | undefined;
}

type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  body,
  headers,
});
const unauthorized = (message: string): Answer => json(401, { statusCode: 401, message, error: 'Unauthorized' });

/**
 * The module's routes (and an app route `GET /api/data`) in memory, behind {@link FakeAuthServer.fetch}.
 * In cookie mode it also plays the browser's cookie jar (one jar: shared by every tab).
 */
export class FakeAuthServer {
  readonly calls: RecordedCall[] = [];
  /** Access tokens the server accepts (until their exp). */
  readonly validAccess = new Set<string>();
  /** Refresh tokens the server accepts. */
  readonly validRefresh = new Set<string>();
  /** The refresh cookie (cookie mode). */
  cookie: string | undefined;
  /** Addresses with TOTP on. */
  readonly mfaUsers = new Set<string>();
  /** Seconds. */
  accessTtl = 600;
  /** Real ms every answer takes. */
  latencyMs = 2;
  /** Force the refresh route to answer this (e.g. 503). */
  refreshAnswer: Answer | undefined;
  /** Hold refresh answers until this resolves. */
  refreshGate: Promise<void> | undefined;
  /** `GET /api/data` and the TOTP routes answer the RFC 9470 step-up 401. */
  stepUp = false;
  /** fetch rejects (offline). */
  offline = false;
  /** Rotations in the last 5 s: a repeat of the old token gets the same successor (refreshReuseGracePeriod). */
  private readonly recentRotations = new Map<string, { at: number; answer: Record<string, unknown> }>();
  private seq = 0;

  constructor(
    readonly mode: 'cookie' | 'body',
    readonly clock: FakeClock,
  ) {}

  /** Calls to a path (`/auth/refresh`). */
  count(path: string, method?: string): number {
    return this.calls.filter((c) => c.path === path && (method === undefined || c.method === method)).length;
  }

  /** Tokens for a new session (as the server's token response). */
  issue(amr: string[] = ['otp'], sid = `s${++this.seq}`): Record<string, unknown> {
    const now = Math.floor(this.clock.now() / 1000);
    const accessToken = jwt({
      sub: 'user-1',
      sid,
      jti: `j${++this.seq}`,
      typ: 'access',
      amr,
      auth_time: now,
      iat: now,
      exp: now + this.accessTtl,
      display_name: 'Ada',
    });
    const refreshToken = `r${++this.seq}-${sid}`;
    this.validAccess.add(accessToken);
    this.validRefresh.add(refreshToken);
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: this.accessTtl,
    };
    if (this.mode === 'cookie') this.cookie = refreshToken;
    else body['refresh_token'] = refreshToken;
    return body;
  }

  /** Revokes every access token (as a server-side revocation would), keeping refresh tokens. */
  revokeAccessTokens(): void {
    this.validAccess.clear();
  }

  /** Revokes everything (logout-all elsewhere, reuse detection). */
  revokeAll(): void {
    this.validAccess.clear();
    this.validRefresh.clear();
    this.recentRotations.clear();
  }

  private accessOk(authorization: string | null): boolean {
    const token = authorization?.replace(/^Bearer /, '');
    if (!token || !this.validAccess.has(token)) return false;
    const exp = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    return exp * 1000 > this.clock.now();
  }

  readonly fetch: FetchLike = async (input, init = {}) => {
    const request = input instanceof Request ? input : undefined;
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const method = init.method ?? request?.method ?? 'GET';
    const headers = new Headers(init.headers ?? request?.headers);
    const rawBody = typeof init.body === 'string' ? init.body : request ? await request.text() : undefined;
    let body: unknown = rawBody;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      // not JSON: keep the text
    }
    const call: RecordedCall = {
      method,
      path: url.pathname,
      authorization: headers.get('authorization'),
      body,
      credentials: init.credentials,
    };
    this.calls.push(call);
    await tick(this.latencyMs);
    if (this.offline) throw new TypeError('fetch failed');
    if (init.signal?.aborted) throw new DOMException('This operation was aborted', 'AbortError');
    const answer = await this.answer(call);
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { 'content-type': 'application/json', ...answer.headers },
    });
  };

  private async answer(call: RecordedCall): Promise<Answer> {
    const body = (call.body ?? {}) as Record<string, unknown>;
    const signedIn = this.accessOk(call.authorization);
    const stepUpAnswer = json(
      401,
      { statusCode: 401, error: 'insufficient_user_authentication', message: 'Sign in again' },
      {
        'www-authenticate':
          'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age=900',
      },
    );
    switch (`${call.method} ${call.path}`) {
      case 'POST /auth/request-otp':
        if (body['email'] === 'cooldown@example.com') {
          return json(
            429,
            {
              statusCode: 429,
              error: 'Too Many Requests',
              message: 'Please wait 42 seconds before requesting another code.',
              retry_after: 42,
            },
            { 'retry-after': '42' },
          );
        }
        return json(200, { message: 'If the address can sign in, a code is on its way.', expires_in: 600 });
      case 'POST /auth/verify-otp':
        if (body['code'] !== '123456') return unauthorized('Invalid or expired code');
        if (this.mfaUsers.has(String(body['email'])))
          return json(200, { mfa_required: true, mfa_token: 'mfa-token', expires_in: 300 });
        return json(200, this.issue());
      case 'POST /auth/totp/verify':
        if (body['mfa_token'] !== 'mfa-token') return unauthorized('Invalid or expired two-factor challenge');
        if (body['code'] !== '654321' && body['backup_code'] !== 'ABCDE-FGHJK')
          return unauthorized('Invalid two-factor code');
        return json(200, this.issue(['otp', 'totp']));
      case 'POST /auth/refresh': {
        if (this.refreshGate) await this.refreshGate;
        if (this.refreshAnswer) return this.refreshAnswer;
        const presented = this.mode === 'cookie' ? this.cookie : (body['refresh_token'] as string | undefined);
        const repeat = presented ? this.recentRotations.get(presented) : undefined;
        if (repeat && this.clock.now() - repeat.at < 5_000) return json(200, repeat.answer);
        if (!presented || !this.validRefresh.has(presented)) return unauthorized('Invalid or expired refresh token');
        this.validRefresh.delete(presented);
        const answer = this.issue(['otp'], presented.split('-')[1]);
        this.recentRotations.set(presented, { at: this.clock.now(), answer });
        return json(200, answer);
      }
      case 'POST /auth/logout': {
        const presented = this.mode === 'cookie' ? this.cookie : (body['refresh_token'] as string | undefined);
        if (presented) this.validRefresh.delete(presented);
        if (call.authorization) this.validAccess.delete(call.authorization.replace(/^Bearer /, ''));
        if (this.mode === 'cookie') this.cookie = undefined;
        return json(200, { message: 'Logged out' });
      }
      case 'POST /auth/logout-all':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        this.revokeAll();
        if (this.mode === 'cookie') this.cookie = undefined;
        return json(200, { message: 'Logged out everywhere', revoked_sessions: 2 });
      case 'POST /auth/totp/setup':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        if (this.stepUp) return stepUpAnswer;
        return json(200, {
          secret: 'JBSWY3DPEHPK3PXP',
          otpauth_url: 'otpauth://totp/X:a?secret=JBSWY3DPEHPK3PXP',
          qr_code: 'data:image/png;base64,AA==',
        });
      case 'POST /auth/totp/confirm':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        if (body['code'] !== '654321') return unauthorized('Invalid two-factor code');
        this.revokeAll();
        return json(200, { backup_codes: ['ABCDE-FGHJK', 'BCDEF-GHJKL'], ...this.issue(['otp', 'totp']) });
      case 'POST /auth/totp/disable':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        return json(200, {
          message: 'Two-factor authentication disabled',
          revoked_sessions: body['end_other_sessions'] ? 3 : 0,
        });
      case 'POST /auth/totp/backup-codes':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        return json(200, { backup_codes: ['NEWAA-AAAAA'], revoked_sessions: 0 });
      case 'GET /auth/totp/qr':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        return { status: 200, body: 'PNG', headers: { 'content-type': 'image/png' } };
      case 'POST /api/data':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        return json(200, { echo: call.body });
      case 'GET /api/data':
        if (!signedIn) return unauthorized('Invalid or expired access token');
        if (this.stepUp) return stepUpAnswer;
        return json(200, { ok: true });
      default:
        return json(404, { statusCode: 404, message: `Cannot ${call.method} ${call.path}` });
    }
  }
}

/** Channels of one name deliver to each other, asynchronously (a macrotask later), as browsers do. */
export class FakeBus {
  private readonly channels = new Set<FakeChannel>();
  readonly posted: unknown[] = [];

  create = (name: string): BroadcastChannelLike => {
    const channel = new FakeChannel(this, name);
    this.channels.add(channel);
    return channel;
  };

  deliver(from: FakeChannel, message: unknown): void {
    this.posted.push(message);
    for (const channel of this.channels) {
      if (channel !== from && channel.name === from.name && !channel.closed) {
        const copy = structuredClone(message);
        setTimeout(() => channel.dispatch(copy), 0);
      }
    }
  }

  remove(channel: FakeChannel): void {
    this.channels.delete(channel);
  }
}

export class FakeChannel implements BroadcastChannelLike {
  closed = false;
  private readonly listeners: ((event: unknown) => void)[] = [];

  constructor(
    private readonly bus: FakeBus,
    readonly name: string,
  ) {}

  postMessage(message: unknown): void {
    if (this.closed) throw new Error('InvalidStateError: channel is closed');
    this.bus.deliver(this, message);
  }

  addEventListener(_type: 'message', listener: (event: unknown) => void): void {
    this.listeners.push(listener);
  }

  dispatch(data: unknown): void {
    if (!this.closed) for (const listener of this.listeners) listener({ data });
  }

  close(): void {
    this.closed = true;
    this.bus.remove(this);
  }
}

/** An exclusive lock per name, granted in request order. */
export class FakeLocks implements LockManagerLike {
  private readonly tails = new Map<string, Promise<unknown>>();
  granted = 0;

  request<T>(name: string, callback: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const run = previous.then(() => {
      this.granted++;
      return callback();
    });
    this.tails.set(
      name,
      run.catch(() => undefined),
    );
    return run;
  }
}
