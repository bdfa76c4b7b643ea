// The client SDK (libs/otp-auth-client) against the real sample app on loopback: every route
// through the SDK, on Express and Fastify, with the refresh token in a cookie and in the body.
// Codes arrive through the harness's webhook receiver (production delivery, no developer mode).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { jest } from '@jest/globals';
import { generateSync } from 'otplib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './support/browser.js';
import {
  isOtpAuthError,
  MemoryTokenStorage,
  OTP_AUTH_ROUTES,
  OtpAuthClient,
  OtpAuthServerClient,
  type FetchLike,
  type OtpAuthError,
  type SessionChangeEvent,
} from 'nestjs-otp-auth-client';
import { recordSecret } from './support/log-capture.js';
import { freePort } from './support/network-peers.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import type { Platform } from './support/test-app.js';

// Nest boots and Chromium round trips: generous on a busy 2-core machine.
jest.setTimeout(60_000);

const API_KEY = randomBytes(24).toString('hex');
const RESEND_COOLDOWN_S = 2;

/** Whether `@fastify/static` loads here (Swagger UI on Fastify; see sample-app.e2e-spec.ts). */
const fastifyStaticLoads = await import('@fastify/static').then(
  () => true,
  () => false,
);

/** Secrets in an SDK answer, for the leak check (tokens, backup codes, TOTP secret, cookies). */
async function recordAnswerSecrets(response: Response): Promise<void> {
  for (const cookie of response.headers.getSetCookie()) recordSecret(/^[^=]+=([^;]*)/.exec(cookie)?.[1]);
  if (!(response.headers.get('content-type') ?? '').includes('json')) return;
  const body: unknown = await response
    .clone()
    .json()
    .catch(() => undefined);
  if (typeof body !== 'object' || body === null) return;
  const record = body as Record<string, unknown>;
  for (const key of ['access_token', 'refresh_token', 'mfa_token', 'secret', 'otpauth_url']) recordSecret(record[key]);
  if (Array.isArray(record['backup_codes'])) for (const code of record['backup_codes']) recordSecret(code);
}

interface Transport {
  readonly fetch: FetchLike;
  /** Requests per path (`/auth/refresh`). */
  count(path: string): number;
  /** Requests to app routes bearing one of these tokens are sent with a corrupted token: the server refuses them. */
  readonly refuse: Set<string>;
  /** The cookie jar (cookie mode), by name. */
  readonly cookies: Map<string, { value: string; path: string }>;
}

/**
 * What a Node app would pass as the SDK's `fetch`: the global fetch plus, for cookie mode, a
 * minimal cookie jar (one host; `Path` and `Max-Age`/`Expires` honoured), as a browser keeps the
 * refresh cookie. The test adds call counting, token refusal and the leak check's recording.
 */
function transport(jar = new Map<string, { value: string; path: string }>()): Transport {
  const calls: string[] = [];
  const refuse = new Set<string>();
  const fetchWithJar: FetchLike = async (input, init = {}) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    calls.push(url.pathname);
    const headers = new Headers(request.headers);
    const cookie = [...jar]
      .filter(
        ([, c]) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
    if (cookie) headers.set('cookie', cookie);
    const bearer = headers.get('authorization')?.replace(/^Bearer /, '');
    if (bearer && refuse.has(bearer) && !url.pathname.startsWith('/auth/'))
      headers.set('authorization', `Bearer ${bearer}x`);
    const response = await fetch(new Request(request, { headers }));
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const name = pair.slice(0, pair.indexOf('='));
      const value = pair.slice(pair.indexOf('=') + 1);
      const attribute = (key: string) =>
        attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
      const maxAge = attribute('max-age');
      const expires = attribute('expires');
      const expired =
        (maxAge !== undefined && Number(maxAge) <= 0) || (expires !== undefined && Date.parse(expires) <= Date.now());
      if (expired || value === '') jar.delete(name);
      else jar.set(name, { value, path: attribute('path') ?? '/' });
    }
    await recordAnswerSecrets(response);
    return response;
  };
  return { fetch: fetchWithJar, count: (path) => calls.filter((p) => p === path).length, refuse, cookies: jar };
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

const cases = (['express', 'fastify'] as Platform[]).flatMap((platform) =>
  (['cookie', 'body'] as const).map((mode) => [platform, mode] as const),
);

describe.each(cases)('client SDK against the sample app on %s, refresh token in the %s', (platform, mode) => {
  let harness: SampleHarness;
  let baseUrl: string;
  let emails = 0;
  const email = () => `sdk-${platform}-${mode}-${++emails}@example.com`;

  beforeAll(async () => {
    harness = await startSample({
      backend: 'sqlite',
      platform,
      listen: true,
      env: {
        REFRESH_TOKEN_DELIVERY: mode,
        OTP_INTROSPECTION_API_KEYS: API_KEY,
        OTP_RESEND_COOLDOWN: String(RESEND_COOLDOWN_S),
        // Every request comes from 127.0.0.1; the limits have their own suites.
        RATE_LIMITS_ENABLED: 'false',
      },
    });
    baseUrl = harness.url!;
  });
  afterAll(async () => {
    await harness?.close();
  });

  function client(options: { transport?: Transport; storage?: MemoryTokenStorage } = {}) {
    const t = options.transport ?? transport();
    const events: SessionChangeEvent[] = [];
    const sdk = new OtpAuthClient({
      baseUrl,
      refreshTokenDelivery: mode,
      fetch: t.fetch,
      ...(mode === 'body' ? { storage: options.storage ?? new MemoryTokenStorage() } : {}),
    });
    sdk.onSessionChange((event) => events.push(event));
    return { sdk, t, events };
  }

  async function signIn(sdk: OtpAuthClient, address = email()) {
    const requested = await sdk.requestOtp({ email: address });
    expect(requested).toEqual({ message: expect.any(String), expiresIn: 600 });
    const result = await sdk.verifyOtp({ email: address, code: harness.lastCode(address) });
    if (result.type !== 'signed_in') throw new Error(`expected a session, got ${result.type}`);
    return { session: result.session, address };
  }

  it('signs in with the emailed code, calls a protected route, refreshes, logs out', async () => {
    const storage = new MemoryTokenStorage();
    const { sdk, t, events } = client({ storage });
    const { session } = await signIn(sdk);
    expect(session.claims.amr).toEqual(['otp']);
    expect(session.claims.sub).toBe(session.userId);
    expect(session.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    if (mode === 'cookie') {
      expect(t.cookies.get('otp_refresh')).toEqual({ value: expect.any(String), path: '/auth' });
    } else {
      expect(storage.load()).toEqual({
        accessToken: session.accessToken,
        refreshToken: expect.any(String),
        expiresAt: session.expiresAt,
      });
      expect(t.cookies.size).toBe(0);
    }

    const protectedRes = await sdk.fetch(`${baseUrl}/protected`);
    expect(protectedRes.status).toBe(200);
    expect(await protectedRes.json()).toEqual({ user_id: session.userId, session_id: session.claims.sid });

    const firstRefresh = mode === 'cookie' ? t.cookies.get('otp_refresh')!.value : storage.load()!.refreshToken;
    const refreshed = await sdk.refresh();
    expect(refreshed.accessToken).not.toBe(session.accessToken);
    expect(refreshed.claims.sid).toBe(session.claims.sid);
    const secondRefresh = mode === 'cookie' ? t.cookies.get('otp_refresh')!.value : storage.load()!.refreshToken;
    expect(secondRefresh).not.toBe(firstRefresh);
    expect((await sdk.fetch(`${baseUrl}/verified-only`)).status).toBe(200);

    await sdk.logout();
    expect(sdk.status).toBe('signed_out');
    expect(events.map((e) => e.type)).toEqual(['signed_in', 'refreshed', 'signed_out']);
    if (mode === 'cookie') expect(t.cookies.has('otp_refresh')).toBe(false);
    else expect(storage.load()).toBeNull();
    // The server ended the session: the last access token and refresh token are refused.
    const raw = await fetch(`${baseUrl}/protected`, { headers: { authorization: `Bearer ${refreshed.accessToken}` } });
    expect(raw.status).toBe(401);
    const reuse = await fetch(`${baseUrl}/auth/refresh`, {
      method: 'POST',
      headers: mode === 'cookie' ? { cookie: `otp_refresh=${secondRefresh}` } : { 'content-type': 'application/json' },
      ...(mode === 'body' ? { body: JSON.stringify({ refresh_token: secondRefresh }) } : {}),
    });
    expect(reuse.status).toBe(401);
    // Signed out, the SDK's fetch sends no token and returns the 401.
    expect((await sdk.fetch(`${baseUrl}/protected`)).status).toBe(401);
  });

  it('ten parallel requests refused with 401 cause exactly one refresh, and each is retried once', async () => {
    const { sdk, t, events } = client();
    const { session } = await signIn(sdk);
    t.refuse.add(session.accessToken);
    const responses = await Promise.all(Array.from({ length: 10 }, () => sdk.fetch(`${baseUrl}/protected`)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(t.count('/auth/refresh')).toBe(1);
    expect(t.count('/protected')).toBe(20);
    expect(sdk.getSession()!.accessToken).not.toBe(session.accessToken);
    expect(events.map((e) => e.type)).toEqual(['signed_in', 'refreshed']);
  });

  it('when the session was revoked elsewhere, ten parallel requests share one failed refresh: all reject, signed out', async () => {
    const storage = new MemoryTokenStorage();
    const { sdk, t, events } = client({ storage });
    const { session } = await signIn(sdk);
    // Another device ends this session (logout with its credentials, outside this client).
    const ended = await fetch(`${baseUrl}/auth/logout`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${session.accessToken}`,
        ...(mode === 'cookie'
          ? { cookie: `otp_refresh=${t.cookies.get('otp_refresh')!.value}` }
          : { 'content-type': 'application/json' }),
      },
      ...(mode === 'body' ? { body: JSON.stringify({ refresh_token: storage.load()!.refreshToken }) } : {}),
    });
    expect(ended.status).toBe(200);

    const results = await Promise.allSettled(Array.from({ length: 10 }, () => sdk.fetch(`${baseUrl}/protected`)));
    expect(t.count('/auth/refresh')).toBe(1);
    expect(results.map((r) => r.status)).toEqual(Array(10).fill('rejected'));
    const reasons = new Set(results.map((r) => (r as PromiseRejectedResult).reason as OtpAuthError));
    expect(reasons.size).toBe(1);
    expect([...reasons][0]).toMatchObject({ code: 'unauthorized', status: 401, route: 'refresh' });
    expect(sdk.status).toBe('signed_out');
    expect(events.at(-1)).toEqual({ type: 'signed_out', session: null, reason: 'session_ended', source: 'this_tab' });
  });

  it('two-factor: enrol (setup, QR, confirm), sign in with a TOTP code, new backup codes ending other sessions, disable', async () => {
    const first = client();
    const { address, session: oneFactor } = await signIn(first.sdk);
    const setup = await first.sdk.totp.setup();
    recordSecret(setup.secret);
    expect(setup.otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
    expect(setup.qrCode).toMatch(/^data:image\/png;base64,/);
    const png = new Uint8Array(await (await first.sdk.totp.qrCode()).arrayBuffer());
    expect([...png.slice(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);

    expect(await failure(first.sdk.totp.confirm({ code: '000000' }))).toMatchObject({
      code: 'invalid_code',
      status: 401,
    });
    const confirmed = await first.sdk.totp.confirm({ code: generateSync({ secret: setup.secret }) });
    expect(confirmed.backupCodes).toHaveLength(10);
    expect(confirmed.session.claims.amr).toEqual(expect.arrayContaining(['otp', 'totp']));
    expect(first.sdk.getSession()).toBe(confirmed.session);
    expect(first.events.map((e) => e.type)).toEqual(['signed_in', 'signed_in']);
    // The one-factor session was ended by confirm; the SDK holds the new one.
    expect(
      (await fetch(`${baseUrl}/protected`, { headers: { authorization: `Bearer ${oneFactor.accessToken}` } })).status,
    ).toBe(401);
    expect((await first.sdk.fetch(`${baseUrl}/protected`)).status).toBe(200);
    expect(first.t.count('/auth/refresh')).toBe(0);

    // A second device signs in: the email code, then the authenticator code (the next time step:
    // the current one was used by confirm, and replays are refused).
    await new Promise((resolve) => setTimeout(resolve, RESEND_COOLDOWN_S * 1000 + 100));
    const second = client();
    await second.sdk.requestOtp({ email: address });
    const challenge = await second.sdk.verifyOtp({ email: address, code: harness.lastCode(address) });
    if (challenge.type !== 'mfa_required') throw new Error('expected an MFA challenge');
    recordSecret(challenge.mfaToken);
    expect(challenge.expiresIn).toBe(300);
    expect(second.sdk.status).toBe('unknown');
    expect(await failure(second.sdk.verifyMfa({ mfaToken: challenge.mfaToken, code: '000000' }))).toMatchObject({
      code: 'invalid_code',
    });
    const nextStep = generateSync({ secret: setup.secret, epoch: Math.floor(Date.now() / 1000) + 30 });
    const twoFactor = await second.sdk.verifyMfa({ mfaToken: challenge.mfaToken, code: nextStep });
    expect(twoFactor.claims.amr).toEqual(['otp', 'totp']);

    const regenerated = await second.sdk.totp.regenerateBackupCodes({
      backupCode: confirmed.backupCodes[0]!,
      endOtherSessions: true,
    });
    for (const code of regenerated.backupCodes) recordSecret(code);
    expect(regenerated.backupCodes).toHaveLength(10);
    expect(regenerated.revokedSessions).toBe(1);
    // The first device's session ended: its next request finds out (one refresh, refused).
    expect(await failure(first.sdk.fetch(`${baseUrl}/protected`))).toMatchObject({ code: 'unauthorized' });
    expect(first.sdk.status).toBe('signed_out');

    expect(await second.sdk.totp.disable({ backupCode: regenerated.backupCodes[0]! })).toEqual({ revokedSessions: 0 });
    expect(await failure(second.sdk.totp.disable({ backupCode: regenerated.backupCodes[1]! }))).toMatchObject({
      code: 'validation_failed',
      status: 400,
    });
    expect(second.t.count('/auth/refresh')).toBe(0);
  });

  it('maps the server answers to stable error codes', async () => {
    const { sdk } = client();
    const address = email();
    expect(await failure(sdk.verifyOtp({ email: address, code: '123456' }))).toMatchObject({
      code: 'invalid_code',
      status: 401,
    });
    await sdk.requestOtp({ email: address });
    const cooldown = await failure(sdk.requestOtp({ email: address }));
    expect(cooldown).toMatchObject({ code: 'cooldown', status: 429, route: 'requestOtp' });
    expect(cooldown.retryAfter).toBeGreaterThanOrEqual(1);
    expect(cooldown.retryAfter).toBeLessThanOrEqual(RESEND_COOLDOWN_S);
    const invalid = await failure(sdk.requestOtp({ email: 'not-an-address' }));
    expect(invalid).toMatchObject({ code: 'validation_failed', status: 400 });
    expect(invalid.details).toContain('email must be a valid email address');
    expect(await failure(sdk.logoutAll())).toMatchObject({ code: 'not_signed_in', status: 0 });
    const offline = new OtpAuthClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, refreshTokenDelivery: mode });
    expect(await failure(offline.requestOtp({ email: address }))).toMatchObject({ code: 'network_error', status: 0 });
    const aborted = new AbortController();
    aborted.abort();
    expect(await failure(sdk.requestOtp({ email: address }, { signal: aborted.signal }))).toMatchObject({
      code: 'aborted',
    });
  });

  it('logoutAll ends every session of the user', async () => {
    const a = client();
    const { address } = await signIn(a.sdk);
    await new Promise((resolve) => setTimeout(resolve, RESEND_COOLDOWN_S * 1000 + 100));
    const b = client();
    await signIn(b.sdk, address);
    expect(await b.sdk.logoutAll()).toEqual({ revokedSessions: 2 });
    expect(b.sdk.status).toBe('signed_out');
    expect(await failure(a.sdk.fetch(`${baseUrl}/protected`))).toMatchObject({ code: 'unauthorized' });
  });

  it('introspection (API key) and the gateway endpoint, from another service', async () => {
    const { sdk } = client();
    const { session } = await signIn(sdk);
    const tokens = new OtpAuthServerClient<{ display_name: string | null }>({ baseUrl, apiKey: API_KEY });
    const active = await tokens.introspect(session.accessToken);
    expect(active).toMatchObject({
      active: true,
      token_type: 'access_token',
      sub: session.userId,
      sid: session.claims.sid,
    });
    if (active.active) expect(active.display_name).toBeNull();
    expect(await tokens.introspect('not-a-token')).toEqual({ active: false });
    expect(await tokens.verifyToken(session.accessToken)).toEqual({
      userId: session.userId,
      claims: expect.objectContaining({ sub: session.userId, amr: ['otp'] }),
    });
    expect(await tokens.verifyToken('not-a-token')).toBeNull();
    const wrongKey = new OtpAuthServerClient({ baseUrl, apiKey: 'x'.repeat(40) });
    expect(await failure(wrongKey.introspect(session.accessToken))).toMatchObject({
      code: 'unauthorized',
      status: 401,
    });

    await sdk.logout();
    expect(await tokens.introspect(session.accessToken)).toEqual({ active: false });
    expect(await tokens.verifyToken(session.accessToken)).toBeNull();
  });

  if (mode === 'cookie') {
    it('tabs sharing the cookie jar: one signs in, the other adopts it over BroadcastChannel; refreshes are shared', async () => {
      const jar = new Map<string, { value: string; path: string }>();
      const channelName = `sdk-e2e-${randomBytes(6).toString('hex')}`;
      const tab = (t: Transport) => {
        const events: SessionChangeEvent[] = [];
        const sdk = new OtpAuthClient({
          baseUrl,
          fetch: t.fetch,
          crossTab: { channelName, createChannel: (name) => new BroadcastChannel(name), locks: null },
        });
        sdk.onSessionChange((event) => events.push(event));
        return { sdk, events };
      };
      const ta = transport(jar);
      const tb = transport(jar);
      const a = tab(ta);
      const b = tab(tb);
      try {
        const { session } = await signIn(a.sdk);
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(b.sdk.getSession()?.accessToken).toBe(session.accessToken);
        expect(b.events).toEqual([expect.objectContaining({ type: 'signed_in', source: 'other_tab' })]);
        expect((await b.sdk.fetch(`${baseUrl}/protected`)).status).toBe(200);
        expect(tb.count('/auth/refresh')).toBe(0);

        const refreshed = await b.sdk.refresh();
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(a.sdk.getSession()?.accessToken).toBe(refreshed.accessToken);
        expect(a.events.at(-1)).toMatchObject({ type: 'refreshed', source: 'other_tab' });

        // A third tab, opened later, asks the others instead of rotating the cookie.
        const c = tab(transport(jar));
        try {
          expect((await c.sdk.restore())?.accessToken).toBe(refreshed.accessToken);
        } finally {
          c.sdk.close();
        }
        expect(ta.count('/auth/refresh') + tb.count('/auth/refresh')).toBe(1);

        await a.sdk.logout();
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(b.sdk.status).toBe('signed_out');
        expect(b.events.at(-1)).toMatchObject({ type: 'signed_out', reason: 'logout', source: 'other_tab' });
      } finally {
        a.sdk.close();
        b.sdk.close();
      }
    });
  }

  if (platform === 'express' || fastifyStaticLoads) {
    it("has one SDK method per route the module mounts (the sample app's OpenAPI document)", async () => {
      const response = await fetch(`${baseUrl}/docs-json`);
      expect(response.status).toBe(200);
      const document = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
      const served = Object.entries(document.paths)
        .filter(([path]) => path.startsWith('/auth/'))
        .flatMap(([path, operations]) =>
          Object.keys(operations)
            .filter((method) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
            .map((method) => `${method.toUpperCase()} ${path}`),
        )
        .sort();
      const sdk = Object.values(OTP_AUTH_ROUTES)
        .map((route) => `${route.method} /auth/${route.path}`)
        .sort();
      // A route added to the module without an SDK method (or removed from it) fails here.
      expect(sdk).toEqual(served);
    });
  }
});

// ---- in a real browser ------------------------------------------------------------------------------

const hasChromium = browserAvailable('client SDK browser e2e');
/** The SDK's ES module build, as the package ships it (built by `tsc -b tsconfig.build.json`). */
const SDK_DIST = fileURLToPath(new URL('../libs/otp-auth-client/dist/esm/', import.meta.url));

/**
 * The page's origin: serves an empty page, the SDK's built files under `/sdk/`, and forwards
 * `/auth/*` and `/protected` to the sample app (app and API on one origin, as behind a proxy).
 */
async function startSite(api: string): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/sdk/')) {
      const file = url.slice('/sdk/'.length).replace(/[^\w.-]/g, '');
      if (!existsSync(`${SDK_DIST}${file}`)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader('content-type', file.endsWith('.js') ? 'text/javascript' : 'application/json');
      res.end(readFileSync(`${SDK_DIST}${file}`));
      return;
    }
    if (!url.startsWith('/auth/') && url !== '/protected') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end('<!doctype html><html><head><title>sdk page</title></head><body>page</body></html>');
      return;
    }
    paths.push(url);
    const forward = httpRequest(
      new URL(url, api),
      { method: req.method, headers: req.headers },
      (answer: IncomingMessage) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      res.statusCode = 502;
      res.end();
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}`,
    paths,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What a tab's script sees (this program is typed without the DOM library). */
interface TabState {
  status: string;
  token: string | null;
  events: string[];
  storage: number;
}

(hasChromium ? describe : describe.skip)('client SDK in Chromium: two tabs, cookie mode', () => {
  let harness: SampleHarness;
  let site: Awaited<ReturnType<typeof startSite>>;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(`${SDK_DIST}index.js`))
      throw new Error(`${SDK_DIST} is missing: run npx tsc -b tsconfig.build.json first`);
    harness = await startSample({
      backend: 'sqlite',
      listen: true,
      env: { COOKIE_SECURE: 'true', RATE_LIMITS_ENABLED: 'false' },
    });
    site = await startSite(harness.url!);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await harness?.close();
  });

  /** Opens a tab on the site with the SDK loaded as `globalThis.auth` (from dist/esm, as a bundler-free page would). */
  async function openTab(context: Awaited<ReturnType<Browser['newContext']>>): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${site.url}/`);
    await page.evaluate(async (sdkUrl) => {
      const sdk = (await import(sdkUrl)) as { OtpAuthClient: new (options: object) => Record<string, any> };
      const g = globalThis as unknown as Record<string, any>;
      g['auth'] = new sdk.OtpAuthClient({ baseUrl: '' });
      g['events'] = [];
      g['auth']['onSessionChange']((event: { type: string; source: string }) =>
        g['events'].push(`${event.type}:${event.source}`),
      );
    }, `${site.url}/sdk/index.js`);
    return page;
  }

  async function state(page: Page): Promise<TabState> {
    const result = await page.evaluate(() => {
      const g = globalThis as unknown as Record<string, any>;
      return {
        status: g['auth'].status as string,
        token: (g['auth'].getSession()?.accessToken ?? null) as string | null,
        events: [...(g['events'] as string[])],
        storage: (g['localStorage'].length as number) + (g['sessionStorage'].length as number),
      };
    });
    recordSecret(result.token);
    return result;
  }

  async function until(page: Page, check: (s: TabState) => boolean): Promise<TabState> {
    for (let i = 0; i < 100; i++) {
      const s = await state(page);
      if (check(s)) return s;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return state(page);
  }

  it('signs in one tab and the other follows; one refresh for both; reload restores from the other tab; logout everywhere', async () => {
    const context = await browser.newContext();
    try {
      const a = await openTab(context);
      const b = await openTab(context);
      const email = 'browser-sdk@example.com';
      await a.evaluate(
        (address) => (globalThis as unknown as Record<string, any>)['auth'].requestOtp({ email: address }),
        email,
      );
      const signedIn = await a.evaluate(
        async ({ address, code }) => {
          const result = await (globalThis as unknown as Record<string, any>)['auth'].verifyOtp({
            email: address,
            code,
          });
          return result.type as string;
        },
        { address: email, code: harness.lastCode(email) },
      );
      expect(signedIn).toBe('signed_in');
      const stateA = await state(a);
      const stateB = await until(b, (s) => s.token !== null);
      expect(stateB.token).toBe(stateA.token);
      expect(stateB.events).toEqual(['signed_in:other_tab']);
      expect(await a.evaluate(() => (globalThis as unknown as Record<string, any>)['document'].cookie)).toBe(''); // HttpOnly
      const [cookie] = await context.cookies();
      recordSecret(cookie?.value);
      expect(cookie).toMatchObject({ name: '__Secure-otp_refresh', path: '/auth', httpOnly: true });

      // The authenticated fetch from the page.
      const status = await b.evaluate(
        async () =>
          ((await (globalThis as unknown as Record<string, any>)['auth'].fetch('/protected')) as { status: number })
            .status,
      );
      expect(status).toBe(200);

      // Both tabs refresh at once: the Web Lock lets one call /refresh, the other takes its token.
      expect(
        await a.evaluate(() => typeof (globalThis as unknown as Record<string, any>)['navigator'].locks?.request),
      ).toBe('function');
      const before = site.paths.filter((p) => p === '/auth/refresh').length;
      const refresh = (page: Page) =>
        page.evaluate(
          async () =>
            ((await (globalThis as unknown as Record<string, any>)['auth'].refresh()) as { accessToken: string })
              .accessToken,
        );
      const [fromA, fromB] = await Promise.all([refresh(a), refresh(b)]);
      recordSecret(fromA);
      expect(fromB).toBe(fromA);
      expect(site.paths.filter((p) => p === '/auth/refresh').length - before).toBe(1);
      expect(fromA).not.toBe(stateA.token);

      // A reload: the new page asks the other tab instead of rotating the cookie.
      await b.reload();
      const reloaded = await openTabState(b);
      expect(reloaded.token).toBe(fromA);
      expect(site.paths.filter((p) => p === '/auth/refresh').length - before).toBe(1);

      expect((await state(a)).storage).toBe(0);
      expect((await state(b)).storage).toBe(0);

      await a.evaluate(() => (globalThis as unknown as Record<string, any>)['auth'].logout());
      const out = await until(b, (s) => s.status === 'signed_out');
      expect(out.events.at(-1)).toBe('signed_out:other_tab');
      expect(await context.cookies()).toEqual([]);
    } finally {
      await context.close();
    }
  });

  /** After a reload: loads the SDK again and restores. */
  async function openTabState(page: Page): Promise<TabState> {
    await page.evaluate(async (sdkUrl) => {
      const sdk = (await import(sdkUrl)) as { OtpAuthClient: new (options: object) => Record<string, any> };
      const g = globalThis as unknown as Record<string, any>;
      g['auth'] = new sdk.OtpAuthClient({ baseUrl: '' });
      g['events'] = [];
      g['auth']['onSessionChange']((event: { type: string; source: string }) =>
        g['events'].push(`${event.type}:${event.source}`),
      );
      await g['auth'].restore();
    }, `${site.url}/sdk/index.js`);
    return state(page);
  }
});
