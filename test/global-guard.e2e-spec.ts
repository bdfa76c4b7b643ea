import { Controller, Get, HttpCode, Injectable, Post, UseGuards, type ExecutionContext } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  CurrentUser,
  isMfaChallenge,
  OtpAuthGlobalGuard,
  OtpAuthGuard,
  OtpAuthService,
  Public,
  TokenClaims,
  VerifiedUserGuard,
  type AccessTokenClaims,
  type AuthRequest,
  type OtpAuthModuleExtras,
} from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, type Platform, type TestApp } from './support/test-app.js';
import type { TestUser } from './support/test-user.entity.js';
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

/** The trap of the review: a public controller whose listed guards must still enforce. */
@Controller('shop')
@Public()
class ShopRoutes {
  @Get('catalog')
  catalog(): { ok: true } {
    return { ok: true };
  }

  @Post('order')
  @HttpCode(200)
  @UseGuards(VerifiedUserGuard)
  order(@CurrentUser() user: TestUser): { email: string } {
    return { email: user.email };
  }

  @Get('cart')
  @UseGuards(OtpAuthGuard)
  cart(@TokenClaims() claims: AccessTokenClaims): { sub: string } {
    return { sub: claims.sub };
  }

  /** Marked on the method too: the listed guard still enforces. */
  @Get('account')
  @Public()
  @UseGuards(VerifiedUserGuard)
  account(@CurrentUser() user: TestUser): { email: string } {
    return { email: user.email };
  }
}

/** A subclass registered as the global guard (`useClass`), counting its getRequest calls. */
@Injectable()
class CountingOtpAuthGlobalGuard extends OtpAuthGlobalGuard {
  static calls = 0;
  protected override getRequest(context: ExecutionContext): AuthRequest {
    CountingOtpAuthGlobalGuard.calls += 1;
    return super.getRequest(context);
  }
}

const bearer = (res: { body: { access_token?: unknown } }) => `Bearer ${String(res.body.access_token)}`;

/** Guards listed on a `@Public()` controller or route enforce, whatever the global guard. */
async function expectListedGuardsEnforce(t: TestApp, email: string): Promise<void> {
  await t.http().get('/shop/catalog').expect(200, { ok: true });
  await t.http().post('/shop/order').expect(401);
  await t.http().post('/shop/order').set('authorization', 'Bearer not-a-token').expect(401);
  await t.http().get('/shop/cart').expect(401);
  await t.http().get('/shop/cart').set('authorization', 'Bearer not-a-token').expect(401);
  await t.http().get('/shop/account').expect(401);

  const signedIn = await signIn(t, email);
  await t.http().post('/shop/order').set('authorization', bearer(signedIn)).expect(200, { email });
  await t.http().get('/shop/account').set('authorization', bearer(signedIn)).expect(200, { email });
  const cart = await t.http().get('/shop/cart').set('authorization', bearer(signedIn)).expect(200);
  expect(cart.body).toEqual({ sub: expect.any(String) });

  // VerifiedUserGuard loads the user on a public route: a deleted one is refused.
  await t.dataSource.query(`DELETE FROM users WHERE email = '${email}'`);
  await t.http().post('/shop/order').set('authorization', bearer(signedIn)).expect(401);
  await t.http().get('/shop/account').set('authorization', bearer(signedIn)).expect(401);
}

describe.each(cases)('globalGuard: true on %s / %s', (backend, platform) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({
      backend,
      platform,
      options: { tokenEndpoints: { introspectionApiKeys: [API_KEY] } },
      extras: { globalGuard: true } satisfies OtpAuthModuleExtras,
      controllers: [AppRoutes, LandingRoutes, ShopRoutes],
    });
  });
  afterEach(async () => {
    await t.close();
  });

  it('registers the module-provided OtpAuthGlobalGuard', () => {
    expect(t.app.get(OtpAuthGlobalGuard)).toBeInstanceOf(OtpAuthGlobalGuard);
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
    await t.http().get('/landing').set('authorization', 'Bearer not-a-token').expect(200);
    const signedIn = await signIn(t, 'stale@example.com');
    t.clock.advance(3601); // the access token has expired
    await t.http().get('/app/public').set('authorization', bearer(signedIn)).expect(200);
    await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(401);
  });

  it('on a @Public() controller or route, guards listed with @UseGuards still enforce', async () => {
    await expectListedGuardsEnforce(t, 'shopper@example.com');
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
  it.each([
    ['APP_GUARD useExisting OtpAuthGlobalGuard', { provide: APP_GUARD, useExisting: OtpAuthGlobalGuard }, false],
    [
      'APP_GUARD useClass with a subclass overriding getRequest',
      { provide: APP_GUARD, useClass: CountingOtpAuthGlobalGuard },
      true,
    ],
  ] as const)('%s: closes app routes, honours @Public(), keeps sign-in open', async (_name, provider, counted) => {
    CountingOtpAuthGlobalGuard.calls = 0;
    const t = await createTestApp({
      backend,
      platform,
      controllers: [AppRoutes, LandingRoutes, ShopRoutes],
      providers: [provider],
    });
    try {
      await t.http().get('/app/private').expect(401);
      await t.http().get('/app/public').expect(200);
      await t.http().get('/app/public').set('authorization', 'Bearer not-a-token').expect(200);
      await t.http().get('/landing').expect(200);
      const signedIn = await signIn(t, 'alt@example.com');
      await t.http().get('/app/private').set('authorization', bearer(signedIn)).expect(200);
      const cookie = refreshCookie(signedIn)!;
      await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${cookie}`).expect(200);
      await expectListedGuardsEnforce(t, 'alt-shopper@example.com');
      if (counted) expect(CountingOtpAuthGlobalGuard.calls).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });

  it('plain OtpAuthGuard as APP_GUARD ignores @Public(): it refuses every route without a token (use OtpAuthGlobalGuard)', async () => {
    const t = await createTestApp({
      backend,
      platform,
      controllers: [AppRoutes, LandingRoutes],
      providers: [{ provide: APP_GUARD, useExisting: OtpAuthGuard }],
    });
    try {
      await t.http().get('/app/public').expect(401);
      await t.http().get('/landing').expect(401);
      await t.http().post('/auth/request-otp').send({ email: 'plain@example.com' }).expect(401);
      // A session opened through the service still passes.
      const auth = t.app.get(OtpAuthService);
      await auth.requestOtp('plain@example.com');
      const session = await auth.verifyOtp('plain@example.com', t.lastCode('plain@example.com'));
      if (isMfaChallenge(session)) throw new Error('unexpected MFA challenge');
      const authorization = `Bearer ${session.accessToken}`;
      await t.http().get('/app/public').set('authorization', authorization).expect(200);
      await t.http().get('/app/private').set('authorization', authorization).expect(200);
    } finally {
      await t.close();
    }
  });
});

describe.each(cases)('no global guard on %s / %s', (backend, platform) => {
  it('on a @Public() controller or route, guards listed with @UseGuards still enforce', async () => {
    const t = await createTestApp({ backend, platform, controllers: [ShopRoutes] });
    try {
      await expectListedGuardsEnforce(t, 'plain-shopper@example.com');
    } finally {
      await t.close();
    }
  });
});
