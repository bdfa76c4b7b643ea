import { jest } from '@jest/globals';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './support/browser.js';
import { recordSecret } from './support/log-capture.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';

/**
 * The refresh cookie in a real browser (Debian's Chromium through playwright-core): what a web
 * app on the same origin can do with it, and what pages of other sites and sibling origins
 * cannot. HTTP-level tests send the headers a browser would; this checks that Chromium really
 * stores, withholds and sends what we expect.
 *
 * Sites: `localhost` is the app's site; `127.0.0.1` is another site (the attacker). Cookies are
 * not separated by port, so every scenario gets its own browser context (its own cookie jar).
 */
// Nest boots, Chromium round trips: generous on a busy 2-core CI machine.
jest.setTimeout(60_000);

const COOKIE = '__Secure-otp_refresh';
const hasChromium = browserAvailable('browser e2e');

/** `fetch`'s `credentials`. */
type Credentials = 'omit' | 'same-origin' | 'include';

/** The few DOM pieces the page scripts use (this test program is typed without the DOM lib). */
interface PageElement {
  name: string;
  value: string;
  type: string;
  method: string;
  action: string;
  target: string;
  append(node: PageElement): void;
  submit(): void;
}
declare const document: {
  cookie: string;
  body: { append(node: PageElement): void };
  createElement(tag: 'iframe' | 'form' | 'input'): PageElement;
};

/** A request that reached the app through one of the test's servers, as the browser sent it. */
interface Seen {
  path: string;
  origin: string | undefined;
  fetchSite: string | undefined;
  hadCookie: boolean;
  status: number;
}

interface Site {
  readonly url: string;
  /** Requests forwarded to the app (same-origin sites only). */
  readonly seen: Seen[];
  close(): Promise<void>;
}

const PAGE = '<!doctype html><html><head><title>test page</title></head><body>page</body></html>';

/**
 * An HTTP server (on a port of its own) that serves an empty page at every path, and, with `api`, forwards
 * `/auth/*` to the app unchanged (Host included), like a reverse proxy serving app and API on
 * one origin.
 */
async function startSite(api?: string, host = 'localhost'): Promise<Site> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    if (!api || !req.url?.startsWith('/auth/')) {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(PAGE);
      return;
    }
    const upstream = new URL(req.url, api);
    const forward = httpRequest(upstream, { method: req.method, headers: req.headers }, (answer: IncomingMessage) => {
      seen.push({
        path: upstream.pathname,
        origin: header(req, 'origin'),
        fetchSite: header(req, 'sec-fetch-site'),
        hadCookie: (header(req, 'cookie') ?? '').includes(`${COOKIE}=`),
        status: answer.statusCode ?? 0,
      });
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => {
      res.statusCode = 502;
      res.end();
    });
    req.pipe(forward);
  });
  const address = host === 'localhost' ? '127.0.0.1' : host.replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** What a page's `fetch` saw: the status, the JSON body if any, or the network error's message. */
interface FetchResult {
  status: number;
  body: Record<string, unknown> | null;
  error?: string;
}

/** Runs `fetch` inside the page, so the browser applies its own cookie, CORS and Origin rules. */
async function pageFetch(
  page: Page,
  url: string,
  init: { method?: string; json?: unknown; bearer?: string; credentials?: Credentials } = {},
): Promise<FetchResult> {
  const result = await page.evaluate(
    async ({ url, init }) => {
      const headers: Record<string, string> = {};
      if (init.json !== undefined) headers['content-type'] = 'application/json';
      if (init.bearer) headers['authorization'] = `Bearer ${init.bearer}`;
      try {
        const res = await fetch(url, {
          method: init.method ?? 'POST',
          headers,
          body: init.json === undefined ? undefined : JSON.stringify(init.json),
          credentials: init.credentials ?? 'same-origin',
        });
        const text = await res.text();
        let body: Record<string, unknown> | null = null;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = null;
        }
        return { status: res.status, body };
      } catch (error) {
        return { status: 0, body: null, error: String(error) };
      }
    },
    { url, init },
  );
  for (const field of ['access_token', 'refresh_token', 'mfa_token']) recordSecret(result.body?.[field]);
  return result;
}

/** A form POST from the page, as a cross-site attack would send it (no CORS involved). */
async function submitForm(page: Page, action: string): Promise<void> {
  await page.evaluate((target) => {
    const frame = document.createElement('iframe');
    frame.name = `sink-${Math.random()}`;
    document.body.append(frame);
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = target;
    form.target = frame.name;
    document.body.append(form);
    form.submit();
  }, action);
}

/** A form POST that navigates the page itself (top level), with these fields: what a login CSRF page does. */
async function navigateWithForm(page: Page, action: string, fields: Record<string, string>): Promise<void> {
  await page.evaluate(
    ({ action, fields }) => {
      const form = document.createElement('form');
      form.method = 'POST';
      form.action = action;
      for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    },
    { action, fields },
  );
}

/** Waits until `seen` holds `count` requests for `path` from `origin` (form posts finish asynchronously). */
async function seenFrom(site: Site, path: string, origin: string, count = 1): Promise<Seen[]> {
  for (let i = 0; i < 100; i += 1) {
    const found = site.seen.filter((s) => s.path === path && s.origin === origin);
    if (found.length >= count) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`fewer than ${count} requests for ${path} from ${origin} reached the app`);
}

(hasChromium ? describe : describe.skip)('the refresh cookie in Chromium', () => {
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
  }, 60_000);
  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
  });

  async function newPage(url: string): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(url);
    return page;
  }

  /** request-otp + verify-otp from the page; returns the access token. */
  async function signIn(
    page: Page,
    sample: SampleHarness,
    api: string,
    email: string,
    credentials?: Credentials,
  ): Promise<string> {
    const requested = await pageFetch(page, `${api}/auth/request-otp`, { json: { email }, credentials });
    expect(requested.status).toBe(200);
    const verified = await pageFetch(page, `${api}/auth/verify-otp`, {
      json: { email, code: sample.lastCode(email) },
      credentials,
    });
    expect(verified.status).toBe(200);
    return verified.body!['access_token'] as string;
  }

  describe('app and API on one origin (SameSite=Strict, the default)', () => {
    let sample: SampleHarness;
    let site: Site;
    let attacker: Site;

    beforeAll(async () => {
      sample = await startSample({
        backend: 'sqlite',
        listen: true,
        env: { COOKIE_SECURE: 'true', RATE_LIMITS_ENABLED: 'false', OTP_RESEND_COOLDOWN: '1' },
      });
      site = await startSite(sample.url);
      attacker = await startSite(undefined, '127.0.0.1');
    });
    afterAll(async () => {
      await site?.close();
      await attacker?.close();
      await sample?.close();
    });

    it('stores the cookie HttpOnly, Secure, Strict on /auth; scripts cannot read it; refresh and logout work', async () => {
      const page = await newPage(`${site.url}/`);
      const access = await signIn(page, sample, site.url, 'browser@example.com');
      const [cookie, ...others] = await page.context().cookies();
      expect(others).toEqual([]);
      expect(cookie).toMatchObject({
        name: COOKIE,
        domain: 'localhost',
        path: '/auth',
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
      });
      recordSecret(cookie!.value);
      expect(await page.evaluate(() => document.cookie)).toBe('');

      const refreshed = await pageFetch(page, `${site.url}/auth/refresh`);
      expect(refreshed.status).toBe(200);
      expect(refreshed.body!['access_token']).toEqual(expect.any(String));
      expect(refreshed.body).not.toHaveProperty('refresh_token');
      const rotated = (await page.context().cookies())[0]!;
      expect(rotated.value).not.toBe(cookie!.value);
      recordSecret(rotated.value);

      const loggedOut = await pageFetch(page, `${site.url}/auth/logout`, { bearer: access });
      expect(loggedOut.status).toBe(200);
      expect(await page.context().cookies()).toEqual([]);
      expect((await pageFetch(page, `${site.url}/auth/refresh`)).status).toBe(401);
    });

    it("another site's forms and fetches reach refresh and logout without the cookie, and change nothing", async () => {
      const page = await newPage(`${site.url}/`);
      const access = await signIn(page, sample, site.url, 'victim@example.com');
      const before = (await page.context().cookies())[0]!.value;
      recordSecret(before);
      const evil = await page.context().newPage();
      await evil.goto(`${attacker.url}/`);
      const evilOrigin = attacker.url;

      await submitForm(evil, `${site.url}/auth/logout`);
      await submitForm(evil, `${site.url}/auth/refresh`);
      const viaFetch = await pageFetch(evil, `${site.url}/auth/refresh`, { credentials: 'include' });
      // CORS hides the answer from the other site's script either way.
      expect(viaFetch.status).toBe(0);

      const [logout] = await seenFrom(site, '/auth/logout', evilOrigin);
      const refreshes = await seenFrom(site, '/auth/refresh', evilOrigin, 2); // the form and the fetch
      // Chromium withheld the Strict cookie from every one of them, and the app refused each as
      // cross-site (403) before reading anything: nothing rotated, nothing cleared.
      for (const attempt of [logout!, ...refreshes]) {
        expect(attempt).toMatchObject({ fetchSite: 'cross-site', hadCookie: false, status: 403 });
      }
      expect((await page.context().cookies()).map((c) => c.value)).toEqual([before]);
      // The victim's session is intact.
      const refreshed = await pageFetch(page, `${site.url}/auth/refresh`);
      expect(refreshed.status).toBe(200);
      recordSecret((await page.context().cookies())[0]?.value);
      expect((await pageFetch(page, `${site.url}/auth/logout`, { bearer: access })).status).toBe(200);
    });

    it("another site's top-level form post of its own address and code to verify-otp (login CSRF) signs nobody in", async () => {
      const email = 'attacker@example.com';
      await sample.http().post('/auth/request-otp').send({ email }).expect(200);
      const code = sample.lastCode(email);
      // The victim's browser, on the attacker's page; the form navigates the whole tab.
      const evil = await newPage(`${attacker.url}/`);
      const answer = evil.waitForResponse((r) => r.url() === `${site.url}/auth/verify-otp`, { timeout: 10_000 });
      await navigateWithForm(evil, `${site.url}/auth/verify-otp`, { email, code });
      expect((await answer).status()).toBe(403);
      const [attempt] = await seenFrom(site, '/auth/verify-otp', attacker.url);
      expect(attempt).toMatchObject({ fetchSite: 'cross-site', status: 403 });
      // A top-level navigation may store a Strict cookie; none was set, so the browser has none.
      expect(await evil.context().cookies()).toEqual([]);
      // The code was not consumed: its owner can still use it.
      const own = await sample.http().post('/auth/verify-otp').send({ email, code }).expect(200);
      recordSecret(own.body.access_token);
    });
  });

  describe('a web app on another origin of the same site (CORS_ORIGINS)', () => {
    let sample: SampleHarness;
    let spa: Site;
    let sibling: Site;
    let api: string;

    beforeAll(async () => {
      spa = await startSite();
      sample = await startSample({
        backend: 'sqlite',
        listen: true,
        env: {
          COOKIE_SECURE: 'true',
          RATE_LIMITS_ENABLED: 'false',
          OTP_RESEND_COOLDOWN: '1',
          CORS_ORIGINS: spa.url,
        },
      });
      api = sample.url!.replace('127.0.0.1', 'localhost');
      sibling = await startSite();
    });
    afterAll(async () => {
      await spa?.close();
      await sibling?.close();
      await sample?.close();
    });

    it('the listed origin signs in, refreshes with the cookie and logs out through CORS', async () => {
      const page = await newPage(`${spa.url}/`);
      const access = await signIn(page, sample, api, 'spa@example.com', 'include');
      expect((await page.context().cookies())[0]).toMatchObject({ name: COOKIE, httpOnly: true, sameSite: 'Strict' });
      recordSecret((await page.context().cookies())[0]!.value);
      const refreshed = await pageFetch(page, `${api}/auth/refresh`, { credentials: 'include' });
      expect(refreshed.status).toBe(200);
      recordSecret((await page.context().cookies())[0]!.value);
      expect((await pageFetch(page, `${api}/auth/logout`, { bearer: access, credentials: 'include' })).status).toBe(
        200,
      );
      expect(await page.context().cookies()).toEqual([]);
    });

    it('an unlisted sibling origin gets the cookie sent by the browser (same site) but is refused: 403, no rotation', async () => {
      const page = await newPage(`${spa.url}/`);
      await signIn(page, sample, api, 'sibling@example.com', 'include');
      const before = (await page.context().cookies())[0]!.value;
      recordSecret(before);

      // Same browser, same cookie jar: a page of http://localhost:<other port> posts a form.
      const other = await page.context().newPage();
      await other.goto(`${sibling.url}/`);
      const response = other.waitForResponse((r) => r.url() === `${api}/auth/refresh`, { timeout: 10_000 });
      await submitForm(other, `${api}/auth/refresh`);
      const answer = await response;
      expect(answer.status()).toBe(403);
      const sent = await answer.request().allHeaders();
      expect(sent['cookie']).toContain(`${COOKIE}=`); // SameSite alone would not have stopped it
      expect(sent['origin']).toBe(sibling.url);
      expect((await page.context().cookies())[0]!.value).toBe(before);
      expect((await pageFetch(page, `${api}/auth/refresh`, { credentials: 'include' })).status).toBe(200);
      recordSecret((await page.context().cookies())[0]?.value);
    });
  });
});
