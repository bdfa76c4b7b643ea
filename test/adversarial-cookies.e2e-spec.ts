import type { Response } from 'supertest';
import { enabledBackends } from './support/databases.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import type { Platform } from './support/test-app.js';

const COOKIE = '__Secure-otp_refresh';

function setCookies(res: Response): string[] {
  const raw = res.headers['set-cookie'] as unknown;
  return Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
}

function cookieValue(res: Response): string {
  const found = setCookies(res).find((c) => c.startsWith(`${COOKIE}=`));
  if (!found) throw new Error('no refresh cookie was set');
  return found.slice(COOKIE.length + 1).split(';')[0]!;
}

// The sample as deployed (COOKIE_SECURE=true, cookie delivery): every Set-Cookie it sends, and
// what it does with cookie-authenticated requests from another site.
const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

describe.each(cases)('refresh cookie and CSRF on the sample app (%s / %s)', (backend, platform) => {
  let sample: SampleHarness;
  const email = 'cookie@example.com';

  beforeAll(async () => {
    sample = await startSample({
      backend,
      platform,
      env: { COOKIE_SECURE: 'true', RATE_LIMITS_ENABLED: 'false', OTP_RESEND_COOLDOWN: '1' },
    });
  });
  afterAll(async () => {
    await sample?.close();
  });

  async function signIn(address = email): Promise<Response> {
    await sample.http().post('/auth/request-otp').send({ email: address }).expect(200);
    return sample
      .http()
      .post('/auth/verify-otp')
      .send({ email: address, code: sample.lastCode(address) })
      .expect(200);
  }

  it('sets every cookie HttpOnly, Secure, SameSite=Strict, on the auth path, with the __Secure- prefix', async () => {
    const signedIn = await signIn();
    const refreshed = await sample
      .http()
      .post('/auth/refresh')
      .set('cookie', `${COOKIE}=${cookieValue(signedIn)}`)
      .expect(200);
    const loggedOut = await sample
      .http()
      .post('/auth/logout')
      .set('authorization', `Bearer ${(refreshed.body as { access_token: string }).access_token}`)
      .set('cookie', `${COOKIE}=${cookieValue(refreshed)}`)
      .expect(200);
    const all = [signedIn, refreshed, loggedOut].flatMap(setCookies);
    expect(all).toHaveLength(3);
    for (const cookie of all) {
      expect(cookie.startsWith(`${COOKIE}=`)).toBe(true);
      expect(cookie).toMatch(/;\s*HttpOnly/i);
      expect(cookie).toMatch(/;\s*Secure/i);
      expect(cookie).toMatch(/;\s*SameSite=Strict/i);
      expect(cookie).toMatch(/;\s*Path=\/auth(;|$)/i);
      expect(cookie).not.toMatch(/;\s*Domain=/i);
    }
    // Logout clears it.
    expect(setCookies(loggedOut)[0]).toMatch(new RegExp(`^${COOKIE}=;`));
  });

  it.each([
    ['a foreign Origin', { origin: 'https://evil.example' }, 'origin@example.com'],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, 'fetch-site@example.com'],
  ])(
    'refuses the cookie on cross-site POSTs (%s), for refresh and logout, and rotates nothing',
    async (_, headers, address) => {
      // An address of its own: no resend cooldown to wait out.
      const token = cookieValue(await signIn(address));
      for (const path of ['/auth/refresh', '/auth/logout']) {
        const refused = await sample.http().post(path).set(headers).set('cookie', `${COOKIE}=${token}`);
        expect(refused.status).toBe(403);
        expect(setCookies(refused)).toEqual([]);
      }
      // The token is still good: the refused requests neither rotated nor revoked it.
      await sample.http().post('/auth/refresh').set('cookie', `${COOKIE}=${token}`).expect(200);
    },
  );

  it('has no GET refresh or logout', async () => {
    for (const path of ['/auth/refresh', '/auth/logout']) {
      const res = await sample.http().get(path);
      expect([404, 405]).toContain(res.status);
    }
  });
});
