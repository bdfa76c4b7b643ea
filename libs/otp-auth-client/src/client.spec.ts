import { OtpAuthClient, type OtpAuthClientOptions } from './client.js';
import { isOtpAuthError, OtpAuthError } from './errors.js';
import { OTP_AUTH_ROUTES } from './routes.js';
import { OtpAuthServerClient } from './server-client.js';
import { MemoryTokenStorage } from './storage.js';
import type { SessionChangeEvent } from './types.js';
import { FakeAuthServer, FakeBus, FakeClock, jwt, tick } from './__spec__/fakes.js';

const BASE = 'https://auth.example.test';
const API = 'https://api.example.test/api/data';

function setup(mode: 'cookie' | 'body', options: Partial<OtpAuthClientOptions> = {}) {
  const clock = new FakeClock();
  const server = new FakeAuthServer(mode, clock);
  const events: SessionChangeEvent[] = [];
  // The fake's /api/data lives under the same fetch; it only looks at the path.
  const client = new OtpAuthClient({
    baseUrl: BASE,
    refreshTokenDelivery: mode,
    fetch: server.fetch,
    clock,
    crossTab: false,
    ...options,
  });
  client.onSessionChange((event) => events.push(event));
  return { clock, server, client, events };
}

async function signIn(client: OtpAuthClient, email = 'ada@example.com') {
  await client.requestOtp({ email });
  const result = await client.verifyOtp({ email, code: '123456' });
  if (result.type !== 'signed_in') throw new Error('expected a session');
  return result.session;
}

async function failure(promise: Promise<unknown>): Promise<OtpAuthError> {
  try {
    await promise;
  } catch (error) {
    if (isOtpAuthError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe.each(['cookie', 'body'] as const)('OtpAuthClient in %s mode', (mode) => {
  it('signs in, decodes the claims, tells listeners, and sends the token with fetch', async () => {
    const { client, server, events, clock } = setup(mode);
    const session = await signIn(client);
    expect(session.userId).toBe('user-1');
    expect(session.claims.amr).toEqual(['otp']);
    expect(session.claims['display_name']).toBe('Ada');
    expect(session.expiresAt).toBe(clock.now() + 600_000);
    expect(client.status).toBe('signed_in');
    expect(client.getSession()).toBe(session);
    expect(events).toEqual([{ type: 'signed_in', session, source: 'this_tab' }]);

    const response = await client.fetch(API);
    expect(response.status).toBe(200);
    expect(server.calls.at(-1)!.authorization).toBe(`Bearer ${session.accessToken}`);
    // Auth routes: cookies travel in cookie mode; body mode leaves credentials alone.
    const verify = server.calls.find((c) => c.path === '/auth/verify-otp')!;
    expect(verify.credentials).toBe(mode === 'cookie' ? 'include' : undefined);
    // App requests keep the caller's credentials.
    expect(server.calls.at(-1)!.credentials).toBeUndefined();
  });

  it('ten parallel 401s cause exactly one refresh; every request is retried once with the new token', async () => {
    const { client, server, events } = setup(mode);
    const first = await signIn(client);
    server.revokeAccessTokens(); // the server refuses the token the client still believes in

    const responses = await Promise.all(Array.from({ length: 10 }, () => client.fetch(API)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(server.count('/auth/refresh')).toBe(1);
    expect(server.count('/api/data')).toBe(20);
    const second = client.getSession()!;
    expect(second.accessToken).not.toBe(first.accessToken);
    const retried = server.calls.filter((c) => c.path === '/api/data').slice(10);
    expect(new Set(retried.map((c) => c.authorization))).toEqual(new Set([`Bearer ${second.accessToken}`]));
    expect(events.map((e) => e.type)).toEqual(['signed_in', 'refreshed']);
    if (mode === 'body') {
      expect(server.calls.find((c) => c.path === '/auth/refresh')!.body).toEqual({
        refresh_token: expect.stringMatching(/^r/),
      });
    }
  });

  it('a refused refresh signs out and rejects all ten waiting requests with the same error', async () => {
    const storage = new MemoryTokenStorage();
    const { client, server, events } = setup(mode, mode === 'body' ? { storage } : {});
    await signIn(client);
    server.revokeAll();

    const results = await Promise.allSettled(Array.from({ length: 10 }, () => client.fetch(API)));
    expect(server.count('/auth/refresh')).toBe(1);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const reasons = results.map((r) => (r as PromiseRejectedResult).reason as OtpAuthError);
    expect(new Set(reasons).size).toBe(1);
    expect(reasons[0]).toBeInstanceOf(OtpAuthError);
    expect(reasons[0]).toMatchObject({ code: 'unauthorized', status: 401, route: 'refresh' });
    expect(client.status).toBe('signed_out');
    expect(client.getSession()).toBeNull();
    expect(events.at(-1)).toEqual({ type: 'signed_out', session: null, reason: 'session_ended', source: 'this_tab' });
    if (mode === 'body') expect(storage.load()).toBeNull();

    // Signed out: requests go without a token, and their 401 is simply the answer.
    const after = await client.fetch(API);
    expect(after.status).toBe(401);
    expect(server.calls.at(-1)!.authorization).toBeNull();
    expect(server.count('/auth/refresh')).toBe(1);
  });

  it('retries once only: a 401 after the refresh is returned as the answer', async () => {
    const { client, server } = setup(mode);
    await signIn(client);
    server.revokeAccessTokens();
    const original = server.fetch;
    // Every access token is refused, even fresh ones.
    const refusing: typeof original = async (input, init) => {
      const response = await original(input, init);
      server.revokeAccessTokens();
      return response;
    };
    const client2 = new OtpAuthClient({
      baseUrl: BASE,
      refreshTokenDelivery: mode,
      fetch: refusing,
      crossTab: false,
      clock: server.clock,
    });
    await signIn(client2);
    const response = await client2.fetch(API);
    expect(response.status).toBe(401);
    expect(server.calls.filter((c) => c.path === '/auth/refresh')).toHaveLength(1);
    expect(client2.status).toBe('signed_in');
  });

  it('does not refresh on a step-up 401 (insufficient_user_authentication): returned as is, or reauthentication_required', async () => {
    const { client, server } = setup(mode);
    await signIn(client);
    server.stepUp = true;
    const response = await client.fetch(API);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'insufficient_user_authentication' }); // body still readable
    const error = await failure(client.totp.setup());
    expect(error).toMatchObject({ code: 'reauthentication_required', status: 401, maxAge: 900, route: 'totp.setup' });
    expect(server.count('/auth/refresh')).toBe(0);
  });

  it('refreshes proactively shortly before exp (fake clock), and once per token', async () => {
    const { client, server, clock, events } = setup(mode, { refreshLeeway: 60 });
    const first = await signIn(client);
    await clock.advance(600_000 - 60_000 - 1_000);
    expect(server.count('/auth/refresh')).toBe(0);
    await clock.advance(2_000);
    await tick(10);
    expect(server.count('/auth/refresh')).toBe(1);
    expect(client.getSession()!.accessToken).not.toBe(first.accessToken);
    expect(events.map((e) => e.type)).toEqual(['signed_in', 'refreshed']);
    // The next token gets its own timer.
    await clock.advance(600_000 - 60_000 + 1_000);
    await tick(10);
    expect(server.count('/auth/refresh')).toBe(2);
  });

  it('caps the leeway at half the lifetime of short tokens', async () => {
    const { client, server, clock } = setup(mode, { refreshLeeway: 60 });
    server.accessTtl = 30;
    await signIn(client);
    await clock.advance(14_000);
    expect(server.count('/auth/refresh')).toBe(0);
    await clock.advance(2_000);
    await tick(10);
    expect(server.count('/auth/refresh')).toBe(1);
  });

  it('without the timer, a request that finds the token expired refreshes first (no 401 round trip)', async () => {
    const { client, server, clock } = setup(mode, { proactiveRefresh: false });
    await signIn(client);
    await clock.advance(601_000);
    expect(clock.pending).toBe(0);
    const responses = await Promise.all([client.fetch(API), client.fetch(API), client.fetch(API)]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(server.count('/auth/refresh')).toBe(1);
    expect(server.count('/api/data')).toBe(3);
  });

  it('inside the leeway, a request goes out with the current token and the refresh runs in the background', async () => {
    const { client, server, clock } = setup(mode, { proactiveRefresh: false });
    const first = await signIn(client);
    await clock.advance(570_000);
    let release!: () => void;
    server.refreshGate = new Promise((resolve) => (release = resolve));
    const response = await client.fetch(API);
    expect(response.status).toBe(200);
    expect(server.calls.at(-1)!.authorization).toBe(`Bearer ${first.accessToken}`);
    expect(server.count('/auth/refresh')).toBe(1);
    release();
    await tick(10);
    expect(client.getSession()!.accessToken).not.toBe(first.accessToken);
  });

  it('keeps the session when a refresh fails for another reason (network, 503), and retries later', async () => {
    const { client, server, clock } = setup(mode);
    const first = await signIn(client);
    server.refreshAnswer = {
      status: 503,
      body: { statusCode: 503, message: 'Sign-in is briefly unavailable.', retry_after: 5 },
      headers: { 'retry-after': '5' },
    };
    const error = await failure(client.refresh());
    expect(error).toMatchObject({ code: 'service_unavailable', status: 503, retryAfter: 5 });
    expect(client.getSession()).toBe(first);
    server.refreshAnswer = undefined;
    server.offline = true;
    expect(await failure(client.refresh())).toMatchObject({ code: 'network_error', status: 0 });
    expect(client.status).toBe('signed_in');
    server.offline = false;
    // The proactive timer failed too (within the leeway) and tries again within 30 s.
    await clock.advance(541_000);
    await tick(10);
    const before = server.count('/auth/refresh');
    expect(client.getSession()!.accessToken).not.toBe(first.accessToken);
    expect(before).toBeGreaterThanOrEqual(3);
  });

  it('completes a two-factor sign-in (discriminated union) with a code or a backup code', async () => {
    const { client, server, events } = setup(mode);
    server.mfaUsers.add('mfa@example.com');
    const result = await client.verifyOtp({ email: 'mfa@example.com', code: '123456' });
    expect(result).toEqual({ type: 'mfa_required', mfaToken: 'mfa-token', expiresIn: 300 });
    expect(client.status).toBe('unknown');
    expect(events).toEqual([]);
    if (result.type !== 'mfa_required') throw new Error('unreachable');
    expect(await failure(client.verifyMfa({ mfaToken: result.mfaToken, code: '000000' }))).toMatchObject({
      code: 'invalid_code',
    });
    expect(await failure(client.verifyMfa({ mfaToken: 'other', code: '654321' }))).toMatchObject({
      code: 'invalid_mfa_token',
    });
    const session = await client.verifyMfa({ mfaToken: result.mfaToken, backupCode: 'ABCDE-FGHJK' });
    expect(session.claims.amr).toEqual(['otp', 'totp']);
    expect(server.calls.at(-1)!.body).toEqual({ mfa_token: 'mfa-token', backup_code: 'ABCDE-FGHJK' });
    expect(events.map((e) => e.type)).toEqual(['signed_in']);
  });

  it('manages TOTP: setup, QR code, confirm (adopts the new session), disable, new backup codes', async () => {
    const { client, server, events } = setup(mode);
    await signIn(client);
    expect(await client.totp.setup()).toEqual({
      secret: 'JBSWY3DPEHPK3PXP',
      otpauthUrl: 'otpauth://totp/X:a?secret=JBSWY3DPEHPK3PXP',
      qrCode: 'data:image/png;base64,AA==',
    });
    const png = await client.totp.qrCode();
    expect(png.type).toBe('image/png');
    expect(await failure(client.totp.confirm({ code: '111111' }))).toMatchObject({ code: 'invalid_code' });
    const confirmed = await client.totp.confirm({ code: '654321' });
    expect(confirmed.backupCodes).toEqual(['ABCDE-FGHJK', 'BCDEF-GHJKL']);
    expect(client.getSession()).toBe(confirmed.session);
    expect(events.map((e) => e.type)).toEqual(['signed_in', 'signed_in']);
    expect((await client.fetch(API)).status).toBe(200); // the old token was revoked by confirm; the new one works

    expect(await client.totp.regenerateBackupCodes({ code: '654321' })).toEqual({
      backupCodes: ['NEWAA-AAAAA'],
      revokedSessions: 0,
    });
    // A wrong code was never retried (it would spend a second guess): no refresh so far.
    expect(server.count('/auth/refresh')).toBe(0);
    expect(server.count('/auth/totp/confirm')).toBe(2);
    // A refused access token on a code-bearing route is: the guard refused it before the code was looked at.
    server.revokeAccessTokens();
    expect(await client.totp.disable({ backupCode: 'ABCDE-FGHJK', endOtherSessions: true })).toEqual({
      revokedSessions: 3,
    });
    expect(server.calls.at(-1)!.body).toEqual({ backup_code: 'ABCDE-FGHJK', end_other_sessions: true });
    expect(server.count('/auth/refresh')).toBe(1);
    expect(server.count('/auth/totp/disable')).toBe(2);
  });

  it('logout ends the session here even if the request fails, and sends what the server needs', async () => {
    const storage = new MemoryTokenStorage();
    const { client, server, events } = setup(mode, mode === 'body' ? { storage } : {});
    const session = await signIn(client);
    const refreshToken = mode === 'body' ? storage.load()!.refreshToken : undefined;
    await client.logout();
    const call = server.calls.at(-1)!;
    expect(call.path).toBe('/auth/logout');
    expect(call.authorization).toBe(`Bearer ${session.accessToken}`);
    expect(call.body).toEqual(mode === 'body' ? { refresh_token: refreshToken } : undefined);
    expect(client.status).toBe('signed_out');
    expect(events.at(-1)).toEqual({ type: 'signed_out', session: null, reason: 'logout', source: 'this_tab' });

    await signIn(client);
    server.offline = true;
    expect(await failure(client.logout())).toMatchObject({ code: 'network_error' });
    expect(client.status).toBe('signed_out');
  });

  it('logoutAll ends every session and signs out', async () => {
    const { client, events } = setup(mode);
    await signIn(client);
    expect(await client.logoutAll()).toEqual({ revokedSessions: 2 });
    expect(client.status).toBe('signed_out');
    expect(events.at(-1)).toMatchObject({ type: 'signed_out', reason: 'logout_all' });
    expect(await failure(client.logoutAll())).toMatchObject({ code: 'not_signed_in', status: 0 });
  });

  it('maps route errors: invalid_code, cooldown with retryAfter, validation', async () => {
    const { client } = setup(mode);
    expect(await failure(client.verifyOtp({ email: 'a@example.com', code: '000000' }))).toMatchObject({
      code: 'invalid_code',
      status: 401,
      message: 'Invalid or expired code',
    });
    expect(await failure(client.requestOtp({ email: 'cooldown@example.com' }))).toMatchObject({
      code: 'cooldown',
      status: 429,
      retryAfter: 42,
    });
  });

  it('an Authorization header the caller set is sent as is, without refresh handling', async () => {
    const { client, server } = setup(mode);
    await signIn(client);
    const response = await client.fetch(API, { headers: { Authorization: 'Bearer mine' } });
    expect(response.status).toBe(401);
    expect(server.calls.at(-1)!.authorization).toBe('Bearer mine');
    expect(server.count('/auth/refresh')).toBe(0);
  });

  it('replays Request objects with bodies; stream bodies get no retry', async () => {
    const { client, server } = setup(mode);
    await signIn(client);
    server.revokeAccessTokens();
    const request = new Request(API, { method: 'POST', body: 'payload', headers: { 'x-test': '1' } });
    const answer = await client.fetch(request);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ echo: 'payload' });
    expect(server.count('/auth/refresh')).toBe(1);
    expect(server.calls.filter((c) => c.path === '/api/data').map((c) => c.body)).toEqual(['payload', 'payload']);

    server.revokeAccessTokens();
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('x'));
        controller.close();
      },
    });
    const streamed = await client.fetch(API, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(401);
    expect(server.count('/auth/refresh')).toBe(1);
  });
});

describe('OtpAuthClient, a session change during a refresh', () => {
  it('a sign-in while the old session refreshes keeps the new session (and its refresh token)', async () => {
    const storage = new MemoryTokenStorage();
    const { client, server } = setup('body', { storage });
    await signIn(client);
    let release!: () => void;
    server.refreshGate = new Promise((resolve) => (release = resolve));
    const refreshing = client.refresh();
    await tick(5);
    server.refreshGate = undefined;
    const fresh = await signIn(client, 'ada@example.com');
    release();
    const result = await refreshing;
    expect(result).toBe(fresh);
    expect(client.getSession()).toBe(fresh);
    expect(storage.load()!.accessToken).toBe(fresh.accessToken);
  });

  it('a token of the same session adopted meanwhile does not make the client drop its rotated refresh token', async () => {
    const storage = new MemoryTokenStorage();
    const clock = new FakeClock();
    const server = new FakeAuthServer('body', clock);
    const bus = new FakeBus();
    const a = new OtpAuthClient({
      baseUrl: BASE,
      refreshTokenDelivery: 'body',
      fetch: server.fetch,
      storage,
      clock,
      crossTab: { createChannel: bus.create, locks: null, peerTimeout: 0 },
    });
    const first = await signIn(a);
    let release!: () => void;
    server.refreshGate = new Promise((resolve) => (release = resolve));
    const refreshing = a.refresh();
    await tick(5);
    // While A's request is in flight, another tab shares a token of the same session.
    const peer = bus.create('nestjs-otp-auth:https://auth.example.test/auth');
    const other = server.issue(['otp'], first.claims.sid);
    peer.postMessage({
      protocol: 'nestjs-otp-auth-client/1',
      from: 'peer',
      type: 'session',
      kind: 'refreshed',
      accessToken: other['access_token'],
      expiresAt: clock.now() + 600_000,
      receivedAt: clock.now(),
    });
    await tick(5);
    expect(a.getSession()!.accessToken).toBe(other['access_token']);
    release();
    const fromA = await refreshing;
    expect(a.getSession()).toBe(fromA);
    // A's own rotation is what the storage keeps: the server still accepts that refresh token.
    expect(storage.load()!.accessToken).toBe(fromA.accessToken);
    expect(server.validRefresh.has(storage.load()!.refreshToken)).toBe(true);
    a.close();
  });
});

describe('OtpAuthClient in cookie mode, after a page load', () => {
  it('restores the session from the refresh cookie: ten parallel requests, one refresh', async () => {
    const { client, server, events } = setup('cookie');
    server.issue(); // a cookie from an earlier page
    expect(client.status).toBe('unknown');
    const responses = await Promise.all(Array.from({ length: 10 }, () => client.fetch(API)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(server.count('/auth/refresh')).toBe(1);
    expect(server.count('/api/data')).toBe(10);
    expect(events).toEqual([{ type: 'signed_in', session: client.getSession(), source: 'restore' }]);
  });

  it('without a cookie, restore() answers null and requests go without a token', async () => {
    const { client, server, events } = setup('cookie');
    expect(await client.restore()).toBeNull();
    expect(client.status).toBe('signed_out');
    const response = await client.fetch(API);
    expect(response.status).toBe(401);
    expect(server.calls.at(-1)!.authorization).toBeNull();
    expect(server.count('/auth/refresh')).toBe(1);
    expect(events).toEqual([]);
  });

  it('restore() that cannot reach the server rejects and stays unknown', async () => {
    const { client, server } = setup('cookie');
    server.offline = true;
    expect(await failure(client.restore())).toMatchObject({ code: 'network_error' });
    expect(client.status).toBe('unknown');
    server.offline = false;
    server.issue();
    expect(await client.restore()).not.toBeNull();
  });
});

describe('OtpAuthClient in body mode with a storage', () => {
  it('resumes from stored tokens, and a server in cookie mode is reported as invalid_response', async () => {
    const clock = new FakeClock();
    const server = new FakeAuthServer('body', clock);
    const storage = new MemoryTokenStorage();
    const a = new OtpAuthClient({ baseUrl: BASE, refreshTokenDelivery: 'body', fetch: server.fetch, storage, clock });
    await signIn(a);
    const b = new OtpAuthClient({ baseUrl: BASE, refreshTokenDelivery: 'body', fetch: server.fetch, storage, clock });
    const restored = await b.restore();
    expect(restored?.accessToken).toBe(a.getSession()!.accessToken);
    expect((await b.fetch(API)).status).toBe(200);
    expect(server.count('/auth/refresh')).toBe(0);

    const cookieServer = new FakeAuthServer('cookie', clock);
    const c = new OtpAuthClient({ baseUrl: BASE, refreshTokenDelivery: 'body', fetch: cookieServer.fetch, clock });
    expect(await failure(signIn(c))).toMatchObject({ code: 'invalid_response' });
    expect(c.getSession()).toBeNull();
  });

  it('adopts tokens another client sharing the storage saved, instead of rotating the same refresh token', async () => {
    const clock = new FakeClock();
    const server = new FakeAuthServer('body', clock);
    const storage = new MemoryTokenStorage();
    const options = { baseUrl: BASE, refreshTokenDelivery: 'body', fetch: server.fetch, storage, clock } as const;
    const a = new OtpAuthClient(options);
    const b = new OtpAuthClient(options);
    await signIn(a);
    await b.restore();
    await a.refresh();
    expect(server.count('/auth/refresh')).toBe(1);
    const adopted = await b.refresh();
    expect(server.count('/auth/refresh')).toBe(1);
    expect(adopted.accessToken).toBe(a.getSession()!.accessToken);
  });
});

describe('OtpAuthClient options', () => {
  it('refuses a storage in cookie mode, a relative baseUrl outside a page, and a bad leeway', () => {
    expect(() => new OtpAuthClient({ baseUrl: BASE, storage: new MemoryTokenStorage() })).toThrow(/storage is for/);
    expect(() => new OtpAuthClient({ baseUrl: '/auth' })).toThrow(/absolute/);
    expect(() => new OtpAuthClient({})).toThrow(/absolute/);
    expect(() => new OtpAuthClient({ baseUrl: BASE, refreshLeeway: -1 })).toThrow(/refreshLeeway/);
    expect(() => new OtpAuthClient({ baseUrl: BASE, refreshTokenDelivery: 'both' as 'body' })).toThrow(
      /cookie' or 'body/,
    );
  });

  it('builds URLs from baseUrl and prefix', async () => {
    const clock = new FakeClock();
    const calls: string[] = [];
    const client = new OtpAuthClient({
      baseUrl: 'https://example.test/api/',
      prefix: 'v1/auth/',
      clock,
      fetch: (input) => {
        calls.push(String(input));
        return Promise.resolve(Response.json({ message: 'ok', expires_in: 600, dev_code: '000000' }));
      },
    });
    expect(await client.requestOtp({ email: 'a@example.com', locale: 'de-CH' })).toEqual({
      message: 'ok',
      expiresIn: 600,
      devCode: '000000',
    });
    expect(calls).toEqual(['https://example.test/api/v1/auth/request-otp']);
  });

  it('a listener that throws does not stop the others', async () => {
    const { client } = setup('body');
    const seen: string[] = [];
    const global = globalThis as { reportError?: (error: unknown) => void };
    const original = global.reportError;
    const reported: unknown[] = [];
    global.reportError = (error: unknown) => reported.push(error);
    try {
      client.onSessionChange(() => {
        throw new Error('listener bug');
      });
      const off = client.onSessionChange((e) => seen.push(e.type));
      await signIn(client);
      off();
      await client.logout();
      expect(seen).toEqual(['signed_in']);
      expect(reported).toHaveLength(2);
    } finally {
      global.reportError = original;
    }
  });

  it('close() stops the refresh timer', async () => {
    const { client, clock, server } = setup('body');
    await signIn(client);
    expect(clock.pending).toBe(1);
    client.close();
    expect(clock.pending).toBe(0);
    await clock.advance(700_000);
    expect(server.count('/auth/refresh')).toBe(0);
  });

  it('reports an access token that is not a JWT as invalid_response', async () => {
    const clock = new FakeClock();
    const client = new OtpAuthClient({
      baseUrl: BASE,
      refreshTokenDelivery: 'body',
      clock,
      fetch: () =>
        Promise.resolve(
          Response.json({ access_token: 'opaque', token_type: 'bearer', expires_in: 60, refresh_token: 'r' }),
        ),
    });
    expect(await failure(client.verifyOtp({ email: 'a@example.com', code: '123456' }))).toMatchObject({
      code: 'invalid_response',
    });
    expect(jwt({ sub: 'x' })).toMatch(/^eyJ/);
  });
});

describe('OTP_AUTH_ROUTES', () => {
  it('names an existing method for every route', () => {
    const client = new OtpAuthClient({ baseUrl: BASE, crossTab: false });
    const server = new OtpAuthServerClient({ baseUrl: BASE });
    for (const [name, spec] of Object.entries(OTP_AUTH_ROUTES)) {
      const target: unknown = spec.client === 'OtpAuthClient' ? client : server;
      const method = name.split('.').reduce<unknown>((object, key) => (object as Record<string, unknown>)[key], target);
      expect([name, typeof method]).toEqual([name, 'function']);
    }
  });
});
