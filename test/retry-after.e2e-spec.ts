/**
 * One filter answers every exception of the module that carries a wait (`RetryAfterFilter`):
 * the 429s of the resend cooldown and of the address counters have `Retry-After` on routes the
 * app mounts itself (`mountRoutes: false` and a controller calling `OtpAuthService`), as on the
 * module's own; `retryAfterFilter: false` hands them to the app's filters untouched.
 */
import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { OtpAuthService, Public } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, type TestApp } from './support/test-app.js';
import type { Platform } from './support/test-app.js';

/** The app's own sign-in routes, as an app that does not mount the module's would write them. */
@Controller('my-auth')
class AppSignInController {
  constructor(private readonly auth: OtpAuthService) {}

  @Post('code')
  @Public()
  @HttpCode(200)
  async code(@Body() body: { email: string }): Promise<{ expires_in: number }> {
    const result = await this.auth.requestOtp(body.email, { ip: '203.0.113.7' });
    return { expires_in: result.expiresIn };
  }

  @Post('sign-in')
  @Public()
  @HttpCode(200)
  async signIn(@Body() body: { email: string; code: string }): Promise<{ ok: true }> {
    await this.auth.verifyOtp(body.email, body.code, { ip: '203.0.113.7' });
    return { ok: true };
  }
}

describe.each(enabledBackends())('Retry-After on routes the app mounts (%s)', (backend) => {
  describe.each<Platform>(['express', 'fastify'])('on %s', (platform) => {
    const apps: TestApp[] = [];
    afterAll(async () => {
      for (const t of apps) await t.close();
    });

    async function app(retryAfterFilter?: boolean): Promise<TestApp> {
      const t = await createTestApp({
        backend,
        platform,
        controllers: [AppSignInController],
        options: { rateLimits: { enabled: true, verify: { perEmail: { limit: 2, window: 600 } } } },
        extras: { mountRoutes: false, ...(retryAfterFilter === undefined ? {} : { retryAfterFilter }) },
      });
      apps.push(t);
      return t;
    }

    it('answers the resend cooldown with 429, its body and Retry-After', async () => {
      const t = await app();
      await t.http().post('/auth/request-otp').send({ email: 'a@example.com' }).expect(404);
      await t.http().post('/my-auth/code').send({ email: 'mine@example.com' }).expect(200);
      const refused = await t.http().post('/my-auth/code').send({ email: 'mine@example.com' }).expect(429);
      const wait = Number(refused.headers['retry-after']);
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(60);
      expect(refused.body).toMatchObject({ statusCode: 429, retry_after: wait });
      expect(refused.headers['cache-control']).toBe('no-store');
    });

    it('answers an address over its verify limit with 429 and Retry-After', async () => {
      const t = await app();
      await t.http().post('/my-auth/code').send({ email: 'guess@example.com' }).expect(200);
      const right = t.lastCode('guess@example.com');
      const wrong = `${right.slice(0, -1)}${(Number(right.at(-1)) + 1) % 10}`;
      for (let i = 0; i < 2; i++) {
        await t.http().post('/my-auth/sign-in').send({ email: 'guess@example.com', code: wrong }).expect(401);
      }
      const refused = await t
        .http()
        .post('/my-auth/sign-in')
        .send({ email: 'guess@example.com', code: wrong })
        .expect(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.body.retry_after).toBe(Number(refused.headers['retry-after']));
    });

    it('leaves the header to the app when the filter is off (the exception still reaches it as a 429)', async () => {
      const t = await app(false);
      await t.http().post('/my-auth/code').send({ email: 'off@example.com' }).expect(200);
      const refused = await t.http().post('/my-auth/code').send({ email: 'off@example.com' }).expect(429);
      expect(refused.headers['retry-after']).toBeUndefined();
      expect(refused.body).toMatchObject({ statusCode: 429, retry_after: expect.any(Number) });
    });
  });
});
