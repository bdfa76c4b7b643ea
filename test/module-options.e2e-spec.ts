import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  isMfaChallenge,
  OtpAuthModule,
  OtpAuthService,
  type OtpAuthModuleOptions,
  type OtpDeliveryContext,
  type OtpSender,
} from 'nestjs-otp-auth';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { createTestDatabase, enabledBackends, type TestDatabase } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, TEST_SECRET, type TestApp } from './support/test-app.js';
import { TestUser } from './support/test-user.entity.js';

describe.each(enabledBackends())('module options on %s', (backend) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('delivery failure: 503, no usable code, no cooldown consumed, previous code still valid', async () => {
    let failing = false;
    t = await createTestApp({ backend, failDelivery: () => failing });
    const email = 'deliver@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const first = t.lastCode(email);
    t.clock.advance(61);
    failing = true;
    const res = await t.http().post('/auth/request-otp').send({ email }).expect(503);
    expect(res.body.message).toMatch(/could not be sent/);
    const row = await t.store.findCode(email, 'login');
    expect(row?.generation).toBe(1);
    failing = false;
    // The cooldown was not consumed by the failed attempt...
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    expect(t.lastCode(email)).toMatch(/^\d{6}$/);
    void first;
  });

  it('an unreachable store answers 503 + Retry-After, or a bare 503 for your own filters when the module filter is off', async () => {
    for (const storeUnavailableFilter of [true, false]) {
      t = await createTestApp({ backend, extras: { storeUnavailableFilter } });
      // The store's database goes away under the app, as a crashed server would.
      t.store.findCode = () =>
        Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      const res = await t.http().post('/auth/request-otp').send({ email: 'outage@example.com' });
      expect(res.status).toBe(503);
      expect(res.body.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe(storeUnavailableFilter ? '5' : undefined);
      await t.close();
      t = undefined;
    }
  });

  it('delivery failure on a first request leaves no row at all', async () => {
    t = await createTestApp({ backend, failDelivery: () => true });
    await t.http().post('/auth/request-otp').send({ email: 'first@example.com' }).expect(503);
    expect(await t.store.findCode('first@example.com', 'login')).toBeNull();
  });

  it('developer mode: all-zero codes of the configured length, returned in the message', async () => {
    t = await createTestApp({ backend, options: { developerMode: true, secret: 'short', otpLength: 8 } });
    const res = await t.http().post('/auth/request-otp').send({ email: 'dev@example.com' }).expect(200);
    expect(res.body.dev_code).toBe('00000000');
    expect(res.body.message).toContain('00000000');
    await t.http().post('/auth/verify-otp').send({ email: 'dev@example.com', code: '00000000' }).expect(200);
  });

  it('autoCreateUser off: unknown addresses get the same answer, no mail and no user', async () => {
    t = await createTestApp({ backend, options: { autoCreateUser: false } });
    await t.store.createOrGetUser('member@example.com');
    const known = await t.http().post('/auth/request-otp').send({ email: 'member@example.com' }).expect(200);
    const unknown = await t.http().post('/auth/request-otp').send({ email: 'stranger@example.com' }).expect(200);
    expect(unknown.body).toEqual(known.body);
    expect(t.sent.map((s) => s.email)).toEqual(['member@example.com']);
    // Cooldown answers match too.
    const k2 = await t.http().post('/auth/request-otp').send({ email: 'member@example.com' }).expect(429);
    const u2 = await t.http().post('/auth/request-otp').send({ email: 'stranger@example.com' }).expect(429);
    expect(u2.body).toEqual(k2.body);
    expect(u2.headers['retry-after']).toBe(k2.headers['retry-after']);
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'member@example.com', code: t.lastCode('member@example.com') })
      .expect(200);
    expect(await t.store.findUserByEmail('stranger@example.com')).toBeNull();
  });

  it('refresh tokens in the body: no cookie, token accepted from the body only', async () => {
    t = await createTestApp({ backend, options: { refreshTokenDelivery: 'body' } });
    const login = await signIn(t, 'app@example.com');
    expect(login.headers['set-cookie']).toBeUndefined();
    expect(login.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await t.http().post('/auth/refresh').set('cookie', `otp_refresh=${login.body.refresh_token}`).expect(401);
    const next = await t.http().post('/auth/refresh').send({ refresh_token: login.body.refresh_token }).expect(200);
    expect(next.body.refresh_token).not.toBe(login.body.refresh_token);
    await t.http().post('/auth/logout').send({ refresh_token: next.body.refresh_token }).expect(200);
    await t.http().post('/auth/refresh').send({ refresh_token: next.body.refresh_token }).expect(401);
    await t.http().post('/auth/refresh').send({ refresh_token: 12 }).expect(400);
  });

  it('both: cookie and body, and the cookie wins when a request carries both', async () => {
    t = await createTestApp({ backend, options: { refreshTokenDelivery: 'both' } });
    const login = await signIn(t, 'both@example.com');
    expect(refreshCookie(login)).toBe(login.body.refresh_token);
    const res = await t
      .http()
      .post('/auth/refresh')
      .set('cookie', `otp_refresh=${login.body.refresh_token}`)
      .send({ refresh_token: 'garbage-that-would-fail' })
      .expect(200);
    expect(res.body.refresh_token).toBe(refreshCookie(res));
  });

  it('custom lifetimes, length, prefix, cookie name and issuer/audience are honoured', async () => {
    t = await createTestApp({
      backend,
      options: {
        accessTokenTtl: 120,
        refreshTokenTtl: 3600,
        otpLength: 8,
        otpTtl: 30,
        issuer: 'acme',
        audience: 'acme-api',
        cookie: { name: 'rt', sameSite: 'lax' },
      },
      extras: { routePrefix: 'login' },
    });
    await t.http().post('/login/request-otp').send({ email: 'p@example.com' }).expect(200);
    expect(t.lastCode('p@example.com')).toMatch(/^\d{8}$/);
    const res = await t
      .http()
      .post('/login/verify-otp')
      .send({ email: 'p@example.com', code: t.lastCode('p@example.com') })
      .expect(200);
    expect(res.body.expires_in).toBe(120);
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!;
    expect(cookie).toMatch(/^rt=/);
    expect(cookie).toMatch(/Path=\/login/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Max-Age=3600/);
    const payload = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({ iss: 'acme', aud: 'acme-api' });
    expect(payload.exp - payload.iat).toBe(120);
    await t.http().post('/auth/request-otp').send({ email: 'p@example.com' }).expect(404);
  });

  it('defaults to a __Secure- cookie name and ignores a request carrying the cookie twice', async () => {
    t = await createTestApp({ backend, options: { cookie: { secure: true } } });
    const login = await signIn(t, 'prefix@example.com');
    const set = (login.headers['set-cookie'] as unknown as string[])[0]!;
    expect(set).toMatch(/^__Secure-otp_refresh=[A-Za-z0-9_-]{43};/);
    const token = set.split(';')[0]!.split('=')[1]!;
    // A planted duplicate (e.g. from a sibling subdomain) makes neither value count.
    await t
      .http()
      .post('/auth/refresh')
      .set('cookie', `__Secure-otp_refresh=planted; __Secure-otp_refresh=${token}`)
      .expect(401);
    await t.http().post('/auth/refresh').set('cookie', `__Secure-otp_refresh=${token}`).expect(200);
  });

  it('custom claims cannot override registered claims', async () => {
    t = await createTestApp({
      backend,
      options: { getAdditionalClaims: () => ({ sub: 'admin', typ: 'refresh', exp: 9_999_999_999, role: 'user' }) },
    });
    const res = await signIn(t, 'override@example.com');
    const payload = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString());
    const user = await t.store.findUserByEmail('override@example.com');
    expect(payload.sub).toBe(user!.id);
    expect(payload.typ).toBe('access');
    expect(payload.exp - payload.iat).toBe(3600);
    expect(payload.role).toBe('user');
  });

  it('mountRoutes false: no routes, services still usable', async () => {
    t = await createTestApp({ backend, extras: { mountRoutes: false } });
    await t.http().post('/auth/request-otp').send({ email: 'svc@example.com' }).expect(404);
    const service = t.app.get(OtpAuthService);
    await service.requestOtp(' SVC@example.com');
    const tokens = await service.verifyOtp('svc@example.com', t.lastCode('svc@example.com'));
    if (isMfaChallenge(tokens)) throw new Error('no TOTP here, so no challenge expected');
    await t.http().get('/protected').set('authorization', `Bearer ${tokens.accessToken}`).expect(200);
  });

  it('revocation reaches a second instance on the same database within the sync interval', async () => {
    t = await createTestApp({ backend });
    const other = await createTestApp({ backend, database: t.database });
    try {
      const login = await signIn(t, 'multi@example.com');
      const auth = `Bearer ${login.body.access_token}`;
      await other.http().get('/protected').set('authorization', auth).expect(200);
      await t.http().post('/auth/logout').set('authorization', auth).expect(200);
      await t.http().get('/protected').set('authorization', auth).expect(401);
      const started = Date.now();
      let status = 200;
      while (status === 200 && Date.now() - started < 3000) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await other.http().get('/protected').set('authorization', auth)).status;
      }
      expect(status).toBe(401);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await other.app.close();
    }
  });
});

describe('startup configuration', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('sqlite', [TestUser, ...otpAuthEntities]);
  });
  afterAll(async () => {
    await db.drop();
  });
  const store = () => new TypeOrmOtpAuthStore(db.dataSource, { userEntity: TestUser });
  const send = async (): Promise<void> => undefined;

  async function boot(options: Partial<OtpAuthModuleOptions>, env?: string): Promise<void> {
    const previous = process.env['NODE_ENV'];
    if (env) process.env['NODE_ENV'] = env;
    try {
      const ref = await Test.createTestingModule({
        imports: [
          OtpAuthModule.forRootAsync({
            useFactory: () => ({ secret: TEST_SECRET, store: store(), sendOtp: send, ...options }),
          }),
        ],
      }).compile();
      await ref.close();
    } finally {
      process.env['NODE_ENV'] = previous;
    }
  }

  it.each([
    [{ secret: 'too-short' }, /at least 32 characters.*openssl rand -hex 32/],
    [{ secret: 'x'.repeat(40) }, /looks like a placeholder.*openssl rand -hex 32/],
    [{ secret: '' }, /`secret` is required.*openssl rand -hex 32/],
    [{ otpLength: 12 }, /`otpLength` must be an integer from 4 to 10/],
    [{ refreshTokenDelivery: 'header' as never }, /refreshTokenDelivery/],
    [{ store: undefined as never }, /`store` is required.*TypeOrmOtpAuthStore/],
    [{ sendOtp: undefined }, /no delivery/],
  ])('refuses %j at startup with a helpful message', async (options, message) => {
    await expect(boot(options)).rejects.toThrow(message);
  });

  it('refuses developer mode in production', async () => {
    await expect(boot({ developerMode: true }, 'production')).rejects.toThrow(/developerMode.*NODE_ENV=production/);
  });

  it('refuses a misspelt option returned by a factory, naming the right one', async () => {
    // Ignored until now: the app started with the default 3600 s access tokens.
    await expect(boot({ accessTokenTTL: 60 } as Partial<OtpAuthModuleOptions>)).rejects.toThrow(
      'OtpAuthModule: unknown option `accessTokenTTL`; did you mean `accessTokenTtl`?',
    );
    await expect(boot({ totp: { windw: 2 } } as Partial<OtpAuthModuleOptions>)).rejects.toThrow(
      'OtpAuthModule: unknown option `totp.windw`; did you mean `totp.window`?',
    );
  });

  it('refuses a definition-time option returned by a factory; beside the factory it applies', async () => {
    await expect(boot({ routePrefix: 'login' } as Partial<OtpAuthModuleOptions>)).rejects.toThrow(
      'OtpAuthModule: `routePrefix` is a definition-time option: pass it to forRootAsync({ routePrefix, useFactory }) beside the factory, not in the object the factory returns.',
    );
    await expect(boot({ mountRoutes: false } as Partial<OtpAuthModuleOptions>)).rejects.toThrow(
      '`mountRoutes` is a definition-time option',
    );
    const ref = await Test.createTestingModule({
      imports: [
        OtpAuthModule.forRootAsync({
          routePrefix: 'login',
          useFactory: () => ({ secret: TEST_SECRET, store: store(), sendOtp: send }),
        }),
      ],
    }).compile();
    const app = ref.createNestApplication({ logger: false });
    await app.init();
    try {
      await request(app.getHttpServer()).post('/login/request-otp').send({ email: 'beside@example.com' }).expect(200);
      await request(app.getHttpServer()).post('/auth/request-otp').send({ email: 'beside@example.com' }).expect(404);
    } finally {
      await app.close();
    }
  });

  it('refuses a DataSource without the module entities', async () => {
    const bare = await createTestDatabase('sqlite', [TestUser]);
    try {
      await expect(boot({ store: new TypeOrmOtpAuthStore(bare.dataSource, { userEntity: TestUser }) })).rejects.toThrow(
        /otpAuthEntities/,
      );
    } finally {
      await bare.drop();
    }
  });

  it('forRootAsync supports useClass, useExisting, imports and an injectable sender class', async () => {
    const sent: string[] = [];
    @Injectable()
    class RecordingSender implements OtpSender {
      async send(email: string, _code: string, context: OtpDeliveryContext): Promise<void> {
        sent.push(`${context.purpose}:${email}`);
      }
    }
    @Injectable()
    class OptionsFactory {
      createOtpAuthOptions(): OtpAuthModuleOptions {
        return { secret: TEST_SECRET, store: store() };
      }
    }
    @Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
    class OptionsModule {}

    for (const async of [{ useClass: OptionsFactory }, { imports: [OptionsModule], useExisting: OptionsFactory }]) {
      const ref = await Test.createTestingModule({
        imports: [OtpAuthModule.forRootAsync({ ...async, sender: RecordingSender })],
      }).compile();
      const app = ref.createNestApplication({ logger: false });
      await app.init();
      await request(app.getHttpServer())
        .post('/auth/request-otp')
        .send({ email: `${sent.length}@example.com` })
        .expect(200);
      await app.close();
    }
    expect(sent).toEqual(['login:0@example.com', 'login:1@example.com']);
  });
});
