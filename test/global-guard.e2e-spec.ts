import { Controller, Get, Injectable, type ExecutionContext, type Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  OtpAuthGuard,
  Public,
  TokenClaims,
  VerifiedUserGuard,
  type AccessTokenClaims,
  type AuthRequest,
  type OtpAuthModuleExtras,
} from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, type Platform, type TestApp } from './support/test-app.js';
import { codeAt, enroll, firstFactor } from './support/totp-helpers.js';

const API_KEY = 'introspection-key-0123456789abcdef0123';
const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

/** An app's own routes, none with a guard of its own. */
@Controller('app')
class AppRoutes {
  @Get('private')
  private(@TokenClaims() claims: AccessTokenClaims): { sub: string } {
    return { sub: claims.sub };
  }

  @Get('public')
  @Public()
  open(): { ok: true } {
    return { ok: true };
  }
}

/** A whole controller opted out. */
@Controller('landing')
@Public()
class LandingRoutes {
  @Get()
  landing(): { ok: true } {
    return { ok: true };
  }
}

/** A subclass registered as the global guard (`useClass`), counting its getRequest calls. */
@Injectable()
class CountingOtpAuthGuard extends OtpAuthGuard {
  static calls = 0;
  protected override getRequest(context: ExecutionContext): AuthRequest {
    CountingOtpAuthGuard.calls += 1;
    return super.getRequest(context);
  }
}

const bearer = (res: { body: { access_token?: unknown } }) => `Bearer ${String(res.body.access_token)}`;

describe.each(cases)('globalGuard: true on %s / %s', (backend, platform) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({
      backend,
      platform,
      options: { tokenEndpoints: { introspectionApiKeys: [API_KEY] } },
      extras: { globalGuard: true } satisfies OtpAuthModuleExtras,
      controllers: [AppRoutes, LandingRoutes],
    });
  });
  afterEach(async () => {
    await t.close();
  });

  it('guards every app route: 401 without a token or with a bad one, 200 with one', async () => {
    await t.http().get('/app/private').expect(401);
    await t.http().get('/app/private').set('authorization', 'Bearer not-a-token').expect(401);
    // An app route that never asked for a guard (the fixture's password login) is closed too.
    await t.http().post('/password-login').send({ email: 'x@example.com', password: 'x' }).expect(401);
    const signedIn = await signIn(t, 'global@example.com');
    const res = await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(200);
    expect(res.body).toEqual({ sub: expect.any(String) });
    // Routes with their own guard keep it.
    await t.http().get('/protected').set('authorization', bearer(signedIn)).expect(200);
    await t.http().get('/verified-only').set('authorization', bearer(signedIn)).expect(200);
    await t.http().get('/mfa-only').set('authorization', bearer(signedIn)).expect(403);
  });

  it('admits @Public() routes and controllers without a token, and with a bad or expired one', async () => {
    await t.http().get('/app/public').expect(200, { ok: true });
    await t.http().get('/app/public').set('authorization', 'Bearer not-a-token').expect(200);
    await t.http().get('/landing').expect(200, { ok: true });
    const signedIn = await signIn(t, 'stale@example.com');
    t.clock.advance(3601); // the access token has expired
    await t.http().get('/app/public').set('authorization', bearer(signedIn)).expect(200);
    await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(401);
  });

  it('keeps the whole sign-in working: request-otp, verify-otp, refresh, logout, logout-all', async () => {
    const email = 'flow@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const verified = await t
      .http()
      .post('/auth/verify-otp')
      .send({ email, code: t.lastCode(email) })
      .expect(200);
    const cookie = refreshCookie(verified)!;
    expect(cookie).toBeDefined();
    // Refresh with the cookie only, and with an expired access token beside it.
    const refreshed = await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${cookie}`).expect(200);
    t.clock.advance(3601);
    const again = await t
      .http()
      .post('/auth/refresh')
      .set('cookie', `otp_refresh=${refreshCookie(refreshed)!}`)
      .set('authorization', bearer(verified))
      .expect(200);
    // Logout with the cookie alone ends the session.
    await t
      .http()
      .post('/auth/logout')
      .set('cookie', `otp_refresh=${refreshCookie(again)!}`)
      .expect(200);
    await t
      .http()
      .post('/auth/refresh')
      .set('cookie', `otp_refresh=${refreshCookie(again)!}`)
      .expect(401);
    await t.http().get('/app/private').set('authorization', bearer(again)).expect(401);
    // logout-all still needs a token.
    await t.http().post('/auth/logout-all').expect(401);
    const other = await signIn(t, 'other@example.com');
    await t.http().post('/auth/logout-all').set('authorization', bearer(other)).expect(200);
  });

  it('keeps two-factor sign-in working: totp/verify takes the mfa_token, enrolment still needs a token', async () => {
    const email = 'mfa-global@example.com';
    const { secret } = await enroll(t, email);
    const mfaToken = await firstFactor(t, email);
    t.clock.advance(30); // a fresh TOTP step: the enrolment's code cannot be replayed
    const done = await t
      .http()
      .post('/auth/totp/verify')
      .send({ mfa_token: mfaToken, code: codeAt(t, secret) })
      .expect(200);
    const claims = await t.http().get('/mfa-only').set('authorization', bearer(done)).expect(200);
    expect(claims.body.amr).toEqual(['otp', 'totp']);
    await t.http().post('/auth/totp/setup').expect(401);
    await t.http().post('/auth/totp/disable').send({ code: '123456' }).expect(401);
    await t.http().post('/auth/totp/backup-codes').send({ code: '123456' }).expect(401);
  });

  it('leaves the token endpoints to their own checks (API key, gateway answer)', async () => {
    const signedIn = await signIn(t, 'gateway@example.com');
    const token = signedIn.body.access_token as string;
    const denied = await t.http().get('/auth/verify').expect(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer'); // the endpoint's own answer
    const ok = await t.http().get('/auth/verify').set('authorization', `Bearer ${token}`).expect(200);
    expect(ok.headers['x-auth-user']).toBeDefined();
    const introspected = await t
      .http()
      .post('/auth/introspect')
      .set('authorization', `Bearer ${API_KEY}`)
      .send({ token })
      .expect(200);
    expect(introspected.body.active).toBe(true);
    await t.http().post('/auth/introspect').set('authorization', 'Bearer wrong-key').send({ token }).expect(401);
  });
});

describe.each(cases)('a global guard without the option on %s / %s', (backend, platform) => {
  const ways: [string, Provider, () => void][] = [
    ['APP_GUARD useExisting OtpAuthGuard', { provide: APP_GUARD, useExisting: OtpAuthGuard }, () => undefined],
    ['APP_GUARD useClass OtpAuthGuard', { provide: APP_GUARD, useClass: OtpAuthGuard }, () => undefined],
    [
      'APP_GUARD useExisting VerifiedUserGuard',
      { provide: APP_GUARD, useExisting: VerifiedUserGuard },
      () => undefined,
    ],
    [
      'APP_GUARD useClass with a subclass overriding getRequest',
      { provide: APP_GUARD, useClass: CountingOtpAuthGuard },
      () => expect(CountingOtpAuthGuard.calls).toBeGreaterThan(0),
    ],
  ];

  it.each(ways)('%s: closes app routes, honours @Public(), keeps sign-in open', async (_name, provider, check) => {
    CountingOtpAuthGuard.calls = 0;
    const t = await createTestApp({
      backend,
      platform,
      controllers: [AppRoutes, LandingRoutes],
      providers: [provider],
    });
    try {
      await t.http().get('/app/private').expect(401);
      await t.http().get('/app/public').expect(200);
      await t.http().get('/landing').expect(200);
      const signedIn = await signIn(t, 'alt@example.com');
      await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(200);
      const cookie = refreshCookie(signedIn)!;
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${cookie}`).expect(200);
      check();
    } finally {
      await t.close();
    }
  });

  it('VerifiedUserGuard as the global guard: public routes need no user lookup, others refuse a deleted user', async () => {
    const t = await createTestApp({
      backend,
      platform,
      controllers: [AppRoutes],
      providers: [{ provide: APP_GUARD, useExisting: VerifiedUserGuard }],
    });
    try {
      const signedIn = await signIn(t, 'gone@example.com');
      await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(200);
      await t.dataSource.query(`DELETE FROM users WHERE email = 'gone@example.com'`);
      await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(401);
      await t.http().get('/app/public').set('authorization', bearer(signedIn)).expect(200);
      t.clock.advance(61);
      await t
        .http()
        .post('/auth/request-otp')
        .set('authorization', bearer(signedIn))
        .send({ email: 'gone@example.com' })
        .expect(200);
    } finally {
      await t.close();
    }
  });
});
