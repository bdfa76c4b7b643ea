import { jest } from '@jest/globals';
import * as nestCommon from '@nestjs/common';
import { Controller, Get, Inject, Injectable, UseGuards } from '@nestjs/common';
import * as nestCore from '@nestjs/core';
import {
  FallbackRateLimitStorage,
  InMemoryRateLimitStorage,
  OTP_RATE_LIMIT_STORAGE,
  OtpRateLimiter,
  type RateLimitCounter,
  type RateLimitDecision,
  type RateLimitStorage,
} from 'nestjs-otp-auth';
import { RateLimitThrottlerStorage } from 'nestjs-otp-auth/throttler';
import { enabledBackends } from './support/databases.js';
import { createTestApp, type Platform, type TestApp } from './support/test-app.js';

// @nestjs/throttler is CommonJS and require()s Nest's ES modules; Jest's runtime needs the same
// module instances handed to it (see throttler-storage.spec.ts).
jest.mock('@nestjs/common', () => nestCommon);
jest.mock('@nestjs/core', () => nestCore);
const { ThrottlerGuard, ThrottlerModule } = await import('@nestjs/throttler');

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);
// The middle of a 60 s window: a run straddling a window edge would see the sliding-window weighting.
const MID_WINDOW = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;

/** An app provider that injects the module's storage, as an app would. */
@Injectable()
class StorageUser {
  constructor(@Inject(OTP_RATE_LIMIT_STORAGE) readonly storage: RateLimitStorage) {}
}

/** A storage of the app's own (not memory, not a fallback), so the module wraps it. */
class CountingStorage implements RateLimitStorage {
  readonly keys: string[] = [];
  private readonly inner = new InMemoryRateLimitStorage();
  consume(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision> {
    this.keys.push(...counters.map((c) => c.key));
    return this.inner.consume(counters, now);
  }
  increment(key: string, ttlMs: number, now: number): Promise<number> {
    return this.inner.increment(key, ttlMs, now);
  }
  read(key: string, now: number): Promise<number> {
    return this.inner.read(key, now);
  }
  reset(keys: readonly string[]): Promise<void> {
    return this.inner.reset(keys);
  }
}

@Controller('throttled')
@UseGuards(ThrottlerGuard)
class ThrottledRoutes {
  @Get()
  ping(): { ok: true } {
    return { ok: true };
  }
}

const sendLimit = {
  perEmail: false,
  perEmailDaily: false,
  perEmailTotal: false,
  perEmailDailyTotal: false,
  perIp: { limit: 2, window: 600 },
  global: false,
} as const;

describe.each(cases)('OTP_RATE_LIMIT_STORAGE on %s / %s', (backend, platform) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  const start = async (config: Omit<Parameters<typeof createTestApp>[0], 'backend' | 'platform'>) => {
    const app = await createTestApp({ backend, platform, ...config });
    apps.push(app);
    return app;
  };

  it('is injectable by the app and is the very storage the limiter counts in (memory by default)', async () => {
    const t = await start({
      options: { resendCooldown: 0, rateLimits: { send: sendLimit } },
      providers: [StorageUser],
    });
    const { storage } = t.app.get(StorageUser);
    expect(storage).toBeInstanceOf(InMemoryRateLimitStorage);
    expect(storage).toBe(t.app.get(OtpRateLimiter).storage);
    const consume = jest.spyOn(storage, 'consume');
    await t.http().post('/auth/request-otp').send({ email: 'a@example.com' }).expect(200);
    await t.http().post('/auth/request-otp').send({ email: 'b@example.com' }).expect(200);
    await t.http().post('/auth/request-otp').send({ email: 'c@example.com' }).expect(429);
    const keys = consume.mock.calls.flatMap(([counters]) => counters.map((c) => c.key));
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((key) => key.startsWith('send:ip:'))).toBe(true);
    // Resetting the counter through the injected instance lifts the limiter's refusal.
    await storage.reset([...new Set(keys)]);
    await t.http().post('/auth/request-otp').send({ email: 'd@example.com' }).expect(200);
  });

  it('is the module-wrapped app storage (failure policy applied) when rateLimits.storage is given', async () => {
    const own = new CountingStorage();
    const t = await start({
      options: { resendCooldown: 0, rateLimits: { storage: own, send: sendLimit } },
      providers: [StorageUser],
    });
    const { storage } = t.app.get(StorageUser);
    expect(storage).toBeInstanceOf(FallbackRateLimitStorage);
    expect(storage).toBe(t.app.get(OtpRateLimiter).storage);
    await t.http().post('/auth/request-otp').send({ email: 'a@example.com' }).expect(200);
    expect(own.keys).toEqual([expect.stringMatching(/^send:ip:/)]);
  });

  it('lets @nestjs/throttler count app routes in it (the README recipe)', async () => {
    const t = await start({
      options: { rateLimits: { send: sendLimit } },
      providers: [StorageUser],
      controllers: [ThrottledRoutes],
      imports: [
        ThrottlerModule.forRootAsync({
          inject: [OTP_RATE_LIMIT_STORAGE],
          useFactory: (storage: RateLimitStorage) => ({
            throttlers: [{ ttl: 60_000, limit: 2 }],
            storage: new RateLimitThrottlerStorage(storage, { now: () => MID_WINDOW }),
          }),
        }),
      ],
    });
    const consume = jest.spyOn(t.app.get(StorageUser).storage, 'consume');
    await t.http().get('/throttled').expect(200);
    await t.http().get('/throttled').expect(200);
    await t.http().get('/throttled').expect(429);
    expect(consume.mock.calls.map(([counters]) => counters[0]!.key)).toEqual([
      expect.stringMatching(/^throttler:/),
      expect.stringMatching(/^throttler:/),
      expect.stringMatching(/^throttler:/),
    ]);
    // The module's own limits are separate counters in the same storage.
    await t.http().post('/auth/request-otp').send({ email: 'a@example.com' }).expect(200);
  });
});
