import 'reflect-metadata';
import type { DynamicModule, INestApplication, Provider, Type } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { OtpAuthModule, type OtpAuthModuleExtras, type OtpAuthModuleOptions } from 'nestjs-otp-auth';
import { OtpJwtStrategy } from 'nestjs-otp-auth/passport';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { createTestDatabase, type Backend, type TestDatabase } from './databases.js';
import { TestUser } from './test-user.entity.js';
import { AccountController, LimitedClassController, ProbeController } from './probe.controller.js';
import { assertNoLeakedSecrets, CapturingLogger, recordResponseSecrets, recordSecret } from './log-capture.js';

export type Platform = 'express' | 'fastify';

export const TEST_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

/** A code the test sender received. */
export interface SentCode {
  email: string;
  code: string;
  purpose: string;
  locale?: string;
}

/** A controllable clock: starts at real time, moves only when told. */
export class TestClock {
  private current = Date.now();
  readonly now = (): number => this.current;
  advance(seconds: number): void {
    this.current += seconds * 1000;
  }
}

export interface TestAppOptions {
  backend: Backend;
  platform?: Platform;
  options?: Partial<OtpAuthModuleOptions>;
  extras?: OtpAuthModuleExtras;
  /** Reuse a database (for two apps on one database). */
  database?: TestDatabase;
  /** Make the sender throw. */
  failDelivery?: () => boolean;
  /** Make the sender take this long, like a real mail server. */
  deliveryDelayMs?: number;
  /** Set the app up before `init()`, as `main.ts` does (`setGlobalPrefix`, `enableVersioning`). */
  beforeInit?: (app: INestApplication) => void;
  /** More of the app: controllers beside the probes, providers (e.g. an APP_GUARD), imports. */
  controllers?: Type[];
  providers?: Provider[];
  imports?: (Type | DynamicModule)[];
}

export interface TestApp {
  app: INestApplication;
  http: () => ReturnType<typeof request>;
  dataSource: DataSource;
  database: TestDatabase;
  store: TypeOrmOtpAuthStore<TestUser>;
  sent: SentCode[];
  clock: TestClock;
  lastCode(email: string): string;
  close(): Promise<void>;
}

/** Builds the module on a real database and HTTP platform, as an application would. */
export async function createTestApp(config: TestAppOptions): Promise<TestApp> {
  const database = config.database ?? (await createTestDatabase(config.backend, [TestUser, ...otpAuthEntities]));
  const store = new TypeOrmOtpAuthStore(database.dataSource, { userEntity: TestUser });
  const sent: SentCode[] = [];
  const clock = new TestClock();
  const moduleRef = await Test.createTestingModule({
    imports: [
      OtpAuthModule.forRoot({
        secret: TEST_SECRET,
        store,
        clock: clock.now,
        cookie: { secure: true, name: 'otp_refresh' },
        sendOtp: async (email, code, context) => {
          if (config.deliveryDelayMs) await new Promise((resolve) => setTimeout(resolve, config.deliveryDelayMs));
          if (config.failDelivery?.()) throw new Error('smtp down');
          recordSecret(code);
          sent.push({ email, code, purpose: context.purpose, ...(context.locale ? { locale: context.locale } : {}) });
        },
        getAdditionalClaims: (user) => ({ display_name: (user as TestUser).displayName }),
        // Every test client is 127.0.0.1: request limits are tested on their own (rate-limits e2e).
        rateLimits: { enabled: false },
        // Invite-only requests are answered at this fixed time (default 1 s): shorter for tests.
        delivery: { responseDeadline: 100 },
        ...config.options,
        ...config.extras,
        isGlobal: true,
      }),
      ...(config.imports ?? []),
    ],
    controllers: [ProbeController, LimitedClassController, AccountController, ...(config.controllers ?? [])],
    // The Passport strategy is opt-in (nestjs-otp-auth/passport); ProbeController has a route behind it.
    providers: [OtpJwtStrategy, ...(config.providers ?? [])],
  })
    // Startup logs (module init runs at compile) go to the capture too.
    .setLogger(new CapturingLogger())
    .compile();
  const platform = config.platform ?? 'express';
  let app: INestApplication;
  if (platform === 'fastify') {
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
      logger: new CapturingLogger(),
    });
    config.beforeInit?.(app);
    await app.init();
    await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  } else {
    app = moduleRef.createNestApplication({ logger: new CapturingLogger() });
    config.beforeInit?.(app);
    await app.init();
  }
  const server = app.getHttpServer();
  return {
    app,
    http: () => tapSecrets(request(server)),
    dataSource: database.dataSource,
    database,
    store,
    sent,
    clock,
    lastCode(email: string): string {
      const found = [...sent].reverse().find((s) => s.email === email);
      if (!found) throw new Error(`no code was sent to ${email}`);
      return found.code;
    },
    close: async () => {
      await app.close();
      if (!config.database) await database.drop();
      assertNoLeakedSecrets();
    },
  };
}

const HTTP_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete', 'head', 'options']);

/**
 * A supertest agent whose responses are searched for secrets (tokens, codes, TOTP secrets,
 * backup codes), so the leak check knows what must never appear in the logs.
 */
export function tapSecrets(agent: ReturnType<typeof request>): ReturnType<typeof request> {
  return new Proxy(agent, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !HTTP_METHODS.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const test = (value as (...a: unknown[]) => request.Test).apply(target, args);
        return test.on('response', recordResponseSecrets);
      };
    },
  });
}

/** The value of the refresh cookie in a response, or undefined. */
export function refreshCookie(res: request.Response, name = 'otp_refresh'): string | undefined {
  const raw = res.headers['set-cookie'] as unknown;
  const cookies: string[] = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  for (const cookie of cookies) {
    const [pair] = cookie.split(';');
    const [key, value] = (pair ?? '').split('=');
    if (key === name) return value;
  }
  return undefined;
}

/** The raw Set-Cookie header for the refresh cookie. */
export function setCookieHeader(res: request.Response): string | undefined {
  const raw = res.headers['set-cookie'] as unknown;
  const cookies: string[] = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return cookies.find((c) => c.startsWith('otp_refresh='));
}

/** Requests a code and signs in; returns the token response. */
export async function signIn(t: TestApp, email: string): Promise<request.Response> {
  await t.http().post('/auth/request-otp').send({ email }).expect(200);
  return t
    .http()
    .post('/auth/verify-otp')
    .send({ email, code: t.lastCode(email) })
    .expect(200);
}
