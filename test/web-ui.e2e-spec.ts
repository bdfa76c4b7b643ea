/**
 * The sample app's sign-in page (`/`) in a real browser (Debian's Chromium through
 * playwright-core), against the sample app with production delivery (signed webhooks, codes
 * captured from the receiver), on Express and Fastify.
 *
 * Screenshots of each step go to `test-artifacts/web-ui/<platform>/` (CI keeps that folder);
 * `OTP_WRITE_DOCS_SCREENSHOTS=1` also refreshes the two in `docs/` that the README shows.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { generateSync } from 'otplib';
import { WEB_UI_CONTENT_SECURITY_POLICY } from '../apps/sample/src/web-ui.controller.js';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './support/browser.js';
import { recordSecret } from './support/log-capture.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import type { Platform } from './support/test-app.js';

const COOKIE = '__Secure-otp_refresh';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/web-ui/', import.meta.url));
const DOCS = fileURLToPath(new URL('../docs/', import.meta.url));
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 860 };

/** What the page's CSP reported, collected by a listener installed before any page script. */
interface Violations {
  csp: string[];
  errors: string[];
}

/** axe-core's result, as far as these tests read it (this file is typed without the DOM library). */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** What the page scripts in this file touch (this file is typed without the DOM library). */
interface WebStorage {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
}
interface PageGlobals {
  document: {
    activeElement: { id: string } | null;
    cookie: string;
    querySelector(selector: string): { textContent: string | null } | null;
    documentElement: { scrollWidth: number; clientWidth: number };
  };
  localStorage: WebStorage;
  sessionStorage: WebStorage;
  addEventListener(type: string, listener: (event: unknown) => void): void;
  reportCspViolation(text: string): void;
}

const hasBrowser = browserAvailable('web UI browser e2e');

describe('sign-in page switched off (OTP_WEB_UI=false)', () => {
  it('answers 404 for the page and its files; the API still works', async () => {
    const harness = await startSample({ backend: 'sqlite', env: { OTP_WEB_UI: 'false' } });
    try {
      await harness.http().get('/').expect(404);
      await harness.http().get('/ui/app.js').expect(404);
      await harness.http().get('/ui/sdk/index.js').expect(404);
      await harness.http().post('/auth/request-otp').send({ email: 'off@example.com' }).expect(200);
    } finally {
      await harness.close();
    }
  });
});

describe.each<Platform>(['express', 'fastify'])('sign-in page files on %s', (platform) => {
  let harness: SampleHarness;
  beforeAll(async () => {
    harness = await startSample({ backend: 'sqlite', platform });
  });
  afterAll(async () => harness?.close());

  it('serves the page, its script, stylesheet and the SDK with a strict CSP and no caching surprises', async () => {
    const page = await harness.http().get('/').expect(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(WEB_UI_CONTENT_SECURITY_POLICY);
    expect(WEB_UI_CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(WEB_UI_CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    expect(page.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    // No inline script or style: every script is an external module the CSP allows.
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/\sstyle=|<style/);
    const script = await harness.http().get('/ui/app.js').expect(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text).toContain("from './sdk/index.js'");
    await harness.http().get('/ui/app.css').expect(200).expect('content-type', 'text/css; charset=utf-8');
    const sdk = await harness.http().get('/ui/sdk/index.js').expect(200);
    expect(sdk.text).toContain('OtpAuthClient');
  });

  it('answers 404 for anything outside the allowlist (no file system path reaches a request)', async () => {
    for (const path of [
      '/ui/index.html',
      '/ui/tsconfig.json',
      '/ui/app.ts',
      '/ui/sdk/index.d.ts',
      '/ui/sdk/package.json',
      '/ui/..%2Fpackage.json',
      '/ui/sdk/..%2F..%2Fpackage.json',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/sdk/',
    ]) {
      const answer = await harness.http().get(path);
      expect([path, answer.status]).toEqual([path, 404]);
    }
  });
});

(hasBrowser ? describe.each<Platform>(['express', 'fastify']) : describe.skip.each<Platform>(['express', 'fastify']))(
  'sign-in page in Chromium on %s',
  (platform) => {
    let harness: SampleHarness;
    let browser: Browser;
    let origin: string;
    let emails = 0;
    const email = (): string => `page-${platform}-${++emails}@example.com`;
    const shots = `${ARTIFACTS}${platform}/`;

    beforeAll(async () => {
      rmSync(shots, { recursive: true, force: true });
      mkdirSync(shots, { recursive: true });
      harness = await startSample({
        backend: 'sqlite',
        platform,
        listen: true,
        // A low per-address verify limit, so the lockout message can be reached in a few tries.
        // A short resend cooldown, so a second sign-in of one address can wait it out.
        env: { COOKIE_SECURE: 'true', RATE_LIMIT_VERIFY_PER_EMAIL: '4/600', OTP_RESEND_COOLDOWN: '8' },
      });
      // localhost (not 127.0.0.1): a secure context, so the browser keeps the __Secure- cookie over http.
      origin = harness.url!.replace('127.0.0.1', 'localhost');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      await harness?.close();
    });

    /** A fresh browser profile with the page open, CSP violations and page errors collected. */
    async function open(viewport = DESKTOP): Promise<{ context: BrowserContext; page: Page; violations: Violations }> {
      const context = await browser.newContext({ viewport, acceptDownloads: true });
      const page = await context.newPage();
      const violations: Violations = { csp: [], errors: [] };
      page.on('pageerror', (error) => violations.errors.push(error.message));
      page.on('console', (entry) => {
        // Chromium logs every 4xx answer ("Failed to load resource: ... status of 401"): those
        // are the API's expected answers (no session to restore, a wrong code), not page errors.
        if (
          entry.type() === 'error' &&
          !/^Failed to load resource: the server responded with a status of 4\d\d/.test(entry.text())
        ) {
          violations.errors.push(entry.text());
        }
      });
      await page.exposeFunction('reportCspViolation', (text: string) => violations.csp.push(text));
      await page.addInitScript(() => {
        const page = globalThis as unknown as PageGlobals;
        page.addEventListener('securitypolicyviolation', (event) => {
          const violation = event as unknown as { violatedDirective: string; blockedURI: string };
          page.reportCspViolation(`${violation.violatedDirective} ${violation.blockedURI}`);
        });
      });
      await page.goto(`${origin}/`);
      await visible(page, 'email');
      return { context, page, violations };
    }

    async function visible(page: Page, view: string): Promise<void> {
      try {
        await page.locator(`#view-${view}`).waitFor({ state: 'visible', timeout: 10_000 });
        await page.locator('main[aria-busy="false"]').waitFor({ timeout: 10_000 });
      } catch (error) {
        await page.screenshot({ path: `${shots}failed-waiting-for-${view}.png`, fullPage: true });
        throw new Error(`The page did not show "${view}"; it says: ${await messageText(page)}`, { cause: error });
      }
    }

    async function messageText(page: Page): Promise<string> {
      return (await page.locator('#message').textContent()) ?? '';
    }

    async function screenshot(page: Page, name: string): Promise<void> {
      await page.screenshot({ path: `${shots}${name}.png`, fullPage: true });
    }

    /** The README's two screenshots (`docs/web-ui-<name>.png`), when asked to refresh them. */
    async function docsScreenshot(page: Page, name: 'phone' | 'desktop'): Promise<void> {
      if (process.env['OTP_WRITE_DOCS_SCREENSHOTS'] !== '1' || platform !== 'express') return;
      mkdirSync(DOCS, { recursive: true });
      await page.screenshot({ path: `${DOCS}web-ui-${name}.png`, fullPage: true });
    }

    /** axe-core in the page (evaluated through the DevTools protocol, so the page's CSP is untouched). */
    async function axe(page: Page, view: string): Promise<void> {
      await page.evaluate(AXE_SOURCE);
      const found = await page.evaluate(async () => {
        const run = (globalThis as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
        return (await run.run()).violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes }));
      });
      const serious = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect([
        view,
        serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
      ]).toEqual([view, []]);
    }

    /** No horizontal scrolling: nothing is wider than the viewport. */
    async function expectNoOverflow(page: Page, view: string): Promise<void> {
      const widths = await page.evaluate(() => {
        const root = (globalThis as unknown as PageGlobals).document.documentElement;
        return { scroll: root.scrollWidth, client: root.clientWidth };
      });
      expect([view, widths.scroll <= widths.client]).toEqual([view, true]);
    }

    /** Email -> code from the delivery channel -> the next view (account, or the MFA step). */
    async function signIn(page: Page, address: string, next: 'account' | 'mfa' = 'account'): Promise<void> {
      await page.getByLabel('Email address').fill(address);
      await page.getByRole('button', { name: 'Send code' }).click();
      await visible(page, 'code');
      if (await page.locator('#resend').isDisabled()) {
        // Within the resend cooldown of an earlier code (already used): wait it out, send another.
        await page.locator('#resend:enabled').waitFor({ timeout: 15_000 });
        expect(await messageText(page)).toBe('You can try again now.');
        const before = harness.deliveredTo(address);
        await page.locator('#resend').click();
        await page.locator('#message', { hasText: 'A new code is on its way' }).waitFor();
        expect(harness.deliveredTo(address)).toBe(before + 1);
      }
      const code = harness.lastCode(address);
      // Pasted with a space, as people copy it out of a mail.
      await page.getByLabel('Sign-in code').fill(`${code.slice(0, 3)} ${code.slice(3)}`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await visible(page, next);
    }

    async function webStorage(page: Page): Promise<string> {
      return page.evaluate(() => {
        const g = globalThis as unknown as PageGlobals;
        const dump = (s: WebStorage): string[] =>
          Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i) ?? '')}`);
        return [...dump(g.localStorage), ...dump(g.sessionStorage)].join('\n');
      });
    }

    it('signs in with the mailed code, keeps tokens out of reach of scripts, survives a reload, signs out', async () => {
      const { context, page, violations } = await open();
      const address = email();
      expect(await page.getByLabel('Sign-in code').getAttribute('autocomplete')).toBe('one-time-code');
      expect(await page.getByLabel('Sign-in code').getAttribute('inputmode')).toBe('numeric');
      // Focus starts on the email field; the form is reachable by keyboard alone.
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id)).toBe(
        'email',
      );
      await axe(page, 'email');
      await screenshot(page, '1-email');

      await page.getByLabel('Email address').fill(address);
      await page.keyboard.press('Enter');
      await visible(page, 'code');
      expect(await page.locator('#code-email').textContent()).toBe(address);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id)).toBe('code');
      await axe(page, 'code');
      await screenshot(page, '2-code');

      const code = harness.lastCode(address);
      await page.getByLabel('Sign-in code').fill(code);
      await page.keyboard.press('Enter');
      await visible(page, 'account');
      await page.locator('#account-email', { hasText: address }).waitFor();
      expect(await page.locator('#account-mfa').textContent()).toBe('Off');
      const claims = JSON.parse((await page.locator('#claims').textContent()) ?? '{}') as Record<string, unknown>;
      expect(claims).toMatchObject({ typ: 'access', amr: ['otp'] });
      expect(await page.locator('#account-id').textContent()).toBe(claims['sub']);
      await axe(page, 'account');
      await screenshot(page, '3-account');
      await docsScreenshot(page, 'desktop');

      // The refresh token is an HttpOnly cookie scoped to /auth; no token is in web storage or document.cookie.
      const cookies = await context.cookies();
      expect(cookies).toEqual([
        expect.objectContaining({ name: COOKIE, httpOnly: true, secure: true, sameSite: 'Strict' }),
      ]);
      recordSecret(cookies[0]!.value);
      const documentCookie = await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie);
      expect(documentCookie).not.toContain(cookies[0]!.value);
      expect(documentCookie).not.toContain(COOKIE);
      expect(await webStorage(page)).toBe('');

      // A reload restores the session from the cookie (a new access token, same session).
      await page.reload();
      await visible(page, 'account');
      const restored = JSON.parse((await page.locator('#claims').textContent()) ?? '{}') as Record<string, unknown>;
      expect(restored['sid']).toBe(claims['sid']);
      expect(restored['jti']).not.toBe(claims['jti']);
      expect(await webStorage(page)).toBe('');

      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await visible(page, 'email');
      expect(await messageText(page)).toBe('You are signed out.');
      expect(await context.cookies()).toEqual([]);
      await page.reload();
      await visible(page, 'email');

      expect(violations).toEqual({ csp: [], errors: [] });
      await context.close();
    }, 60_000);

    it('says a wrong code is wrong (announced in the live region, field marked), and shows the cooldown counting down', async () => {
      const { context, page, violations } = await open();
      const address = email();
      await page.getByLabel('Email address').fill(address);
      await page.getByRole('button', { name: 'Send code' }).click();
      await visible(page, 'code');
      const code = harness.lastCode(address);
      const wrong = `${code.slice(0, -1)}${(Number(code.at(-1)) + 1) % 10}`;
      await page.getByLabel('Sign-in code').fill(wrong);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#message[data-kind="error"]').waitFor();
      expect(await page.locator('#message').getAttribute('aria-live')).toBe('polite');
      expect(await messageText(page)).toBe(
        'That code is not right. Check the latest email and try again, or send a new code.',
      );
      expect(await page.getByLabel('Sign-in code').getAttribute('aria-invalid')).toBe('true');
      await axe(page, 'wrong code');
      await screenshot(page, '4-wrong-code');

      // Within the resend cooldown: the server's Retry-After, counting down on the message and the button.
      await page.getByRole('button', { name: 'Send a new code' }).click();
      await page.locator('#message .countdown').waitFor();
      const first = await page.locator('#message .countdown').textContent();
      const seconds = Number(/in (\d+) s/.exec(first ?? '')?.[1]);
      expect(seconds).toBeGreaterThan(1);
      expect(await page.locator('#resend').isDisabled()).toBe(true);
      expect(await page.locator('#resend').textContent()).toMatch(/^Send a new code \(\d+ s\)$/);
      expect(await messageText(page)).toContain(`You can try again in ${seconds} seconds.`);
      await page.waitForFunction(
        (before) =>
          Number(
            /in (\d+) s/.exec(
              (globalThis as unknown as PageGlobals).document.querySelector('#message .countdown')?.textContent ?? '',
            )?.[1],
          ) < before,
        seconds,
        { timeout: 5_000 },
      );
      expect(harness.deliveredTo(address)).toBe(1);
      await axe(page, 'cooldown');
      await screenshot(page, '5-cooldown');

      // The right code still signs in after a wrong one.
      await page.getByLabel('Sign-in code').fill(code);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await visible(page, 'account');
      expect(violations).toEqual({ csp: [], errors: [] });
      await context.close();
    }, 60_000);

    it('shows the lockout with its wait, and says when the server cannot be reached', async () => {
      const { context, page, violations } = await open(PHONE);
      const address = email();
      await page.getByLabel('Email address').fill(address);
      await page.getByRole('button', { name: 'Send code' }).click();
      await visible(page, 'code');
      const code = harness.lastCode(address);
      const wrong = `${code.slice(0, -1)}${(Number(code.at(-1)) + 1) % 10}`;
      for (let attempt = 1; attempt <= 4; attempt++) {
        await page.getByLabel('Sign-in code').fill(wrong);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.locator('#message[data-kind="error"]').waitFor();
        await page.locator('main[aria-busy="false"]').waitFor();
      }
      await page.getByLabel('Sign-in code').fill(wrong);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#message .countdown').waitFor();
      expect(await messageText(page)).toMatch(/^Too many attempts\. You can try again in \d+ (seconds|minutes)\./);
      await screenshot(page, '6-lockout');

      // The API is unreachable (the connection fails): a message, not a stuck page.
      await page.route('**/auth/request-otp', (route) => route.abort('connectionrefused'));
      await page.getByRole('button', { name: 'Use a different email' }).click();
      await visible(page, 'email');
      await page.getByLabel('Email address').fill(email());
      await page.getByRole('button', { name: 'Send code' }).click();
      await page.locator('#message[data-kind="error"]').waitFor();
      expect(await messageText(page)).toBe(
        'The server cannot be reached. Check your connection and try again in a moment.',
      );
      await visible(page, 'email');
      // The failed request is the only console error (Chromium logs it).
      expect(violations.csp).toEqual([]);
      expect(violations.errors.every((text) => text.includes('net::ERR_CONNECTION_REFUSED'))).toBe(true);
      await context.close();
    }, 60_000);

    it('enrols an authenticator (manual key, codes computed independently), shows backup codes once, then asks for the second factor', async () => {
      const { context, page, violations } = await open();
      const address = email();
      await signIn(page, address);
      await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
      await visible(page, 'totp-setup');
      const qr = await page.locator('#totp-qr').getAttribute('src');
      expect(qr).toMatch(/^data:image\/png;base64,/);
      expect(
        await page.locator('#totp-qr').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      ).toBeGreaterThan(0);
      const secret = ((await page.locator('#totp-secret').textContent()) ?? '').replace(/\s/g, '');
      expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
      recordSecret(secret);
      await axe(page, 'totp setup');
      await screenshot(page, '7-totp-setup');

      await page.getByLabel('Code from your authenticator app').fill(generateSync({ secret }));
      await page.getByRole('button', { name: 'Turn on' }).click();
      await visible(page, 'backup');
      const backupCodes = await page.locator('#backup-codes li').allTextContents();
      expect(backupCodes.length).toBeGreaterThanOrEqual(8);
      for (const backupCode of backupCodes) recordSecret(backupCode);
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Download (.txt)' }).click();
      const file = await download;
      expect(file.suggestedFilename()).toBe('backup-codes.txt');
      const text = readFileSync(await file.path(), 'utf8');
      for (const backupCode of backupCodes) expect(text).toContain(backupCode);
      await axe(page, 'backup codes');
      await screenshot(page, '8-backup-codes');
      await page.getByRole('button', { name: 'Done' }).click();
      await visible(page, 'account');
      expect(await page.locator('#backup-codes li').count()).toBe(0);
      expect(await page.locator('#account-mfa').textContent()).toBe('On');
      expect(await page.locator('#totp-start').isHidden()).toBe(true);

      // A second sign-in (another browser): the email code, then the MFA step, with a backup code.
      const other = await open(PHONE);
      await signIn(other.page, address, 'mfa');
      expect(await other.page.getByLabel('Authenticator code').getAttribute('autocomplete')).toBe('one-time-code');
      await axe(other.page, 'mfa');
      await screenshot(other.page, '9-mfa-phone');
      await other.page.getByRole('button', { name: 'Use a backup code instead' }).click();
      await other.page.getByLabel('Backup code', { exact: true }).fill('AAAAA-AAAAA');
      await other.page.getByRole('button', { name: 'Verify' }).click();
      await other.page.locator('#message[data-kind="error"]').waitFor();
      expect(await messageText(other.page)).toBe('That backup code is not right, or it was used already.');
      await other.page.getByLabel('Backup code', { exact: true }).fill(backupCodes[0]!.toLowerCase());
      await other.page.getByRole('button', { name: 'Verify' }).click();
      await visible(other.page, 'account');
      const claims = JSON.parse((await other.page.locator('#claims').textContent()) ?? '{}') as { amr?: string[] };
      expect(claims.amr).toEqual(expect.arrayContaining(['otp', 'backup']));
      await expectNoOverflow(other.page, 'account on a phone');

      // Sign out everywhere from the second browser: the first one's session ends too.
      await other.page.getByRole('button', { name: 'Sign out everywhere' }).click();
      await visible(other.page, 'email');
      expect(await messageText(other.page)).toMatch(/^Signed out on every device \(2 sessions\)\.$/);
      // The first browser's reload finds its session revoked (its cookie is refused, so it stays
      // on the email step; the server clears a cookie only on a sign-out it accepted).
      await page.reload();
      await visible(page, 'email');
      expect(await page.locator('#account-email').isVisible()).toBe(false);

      expect(violations).toEqual({ csp: [], errors: [] });
      expect(other.violations).toEqual({ csp: [], errors: [] });
      await other.context.close();
      await context.close();
    }, 90_000);

    it('fits a phone and a desktop without horizontal scrolling', async () => {
      for (const [name, viewport] of [
        ['phone', PHONE],
        ['desktop', DESKTOP],
      ] as const) {
        const { context, page, violations } = await open(viewport);
        await expectNoOverflow(page, `${name}: email`);
        await page.getByLabel('Email address').fill(`a.very.long.address.${name}.${platform}@subdomain.example.com`);
        await page.getByRole('button', { name: 'Send code' }).click();
        await visible(page, 'code');
        await expectNoOverflow(page, `${name}: code`);
        await screenshot(page, `10-code-${name}`);
        if (name === 'phone') await docsScreenshot(page, 'phone');
        expect(violations).toEqual({ csp: [], errors: [] });
        await context.close();
      }
    }, 60_000);
  },
);
