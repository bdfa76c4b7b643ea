import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import * as nestCommon from '@nestjs/common';
import { Controller, Get, type INestApplication, Module } from '@nestjs/common';
import * as nestCore from '@nestjs/core';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import request from 'supertest';
import { RedisRateLimitStorage } from '../redis/redis-rate-limit.storage.js';
import { InMemoryRateLimitStorage } from './in-memory-rate-limit.storage.js';
import type { RateLimitStorage } from './rate-limit-storage.interface.js';
import { RateLimitThrottlerStorage } from './throttler-storage.js';

// @nestjs/throttler 6 is CommonJS and require()s @nestjs/common and @nestjs/core, which are ES
// modules since Nest 12. Node ≥ 20.19 handles that natively (require(esm)), but Jest's module
// runtime only does from Node 24.9. So hand it the very ES module instances Nest uses here: the
// real modules, not mocks, and the same identities (decorator metadata, Reflector) as in an app.
jest.mock('@nestjs/common', () => nestCommon);
jest.mock('@nestjs/core', () => nestCore);
const { ThrottlerGuard, ThrottlerModule } = await import('@nestjs/throttler');

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const PREFIX = `otp:rl:test:${randomUUID()}:`;
const LIMIT = 3;
// The middle of the current 60 s window, for every request: a run that straddled a window edge
// would see the sliding-window weighting (3 hits just before the edge weigh a little under 3).
const MID_WINDOW = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;

@Controller()
class PingController {
  @Get('ping')
  ping(): { ok: true } {
    return { ok: true };
  }
}

/** A tiny app limited by @nestjs/throttler, counting in `storage`. */
async function createApp(storage: RateLimitStorage): Promise<INestApplication> {
  @Module({
    imports: [
      ThrottlerModule.forRoot({
        throttlers: [{ ttl: 60_000, limit: LIMIT }],
        storage: new RateLimitThrottlerStorage(storage, { now: () => MID_WINDOW }),
      }),
    ],
    controllers: [PingController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.init();
  return app;
}

describe('RateLimitThrottlerStorage', () => {
  const clients: Redis[] = [];
  const apps: INestApplication[] = [];

  /** An app with its own Redis connection; apps given the same prefix share their counters. */
  async function redisApp(prefix: string): Promise<INestApplication> {
    const client = new Redis(REDIS_URL);
    clients.push(client);
    const app = await createApp(new RedisRateLimitStorage({ client, keyPrefix: prefix }));
    apps.push(app);
    return app;
  }

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    const keys = await clients[0]!.keys(`${PREFIX}*`);
    if (keys.length > 0) await clients[0]!.del(...keys);
    await Promise.all(clients.map((client) => client.quit()));
  });

  it('answers 429 with Retry-After to the request after the limit (Redis)', async () => {
    const server = (await redisApp(`${PREFIX}single:`)).getHttpServer();
    for (let i = 0; i < LIMIT; i++) {
      const ok = await request(server).get('/ping');
      expect(ok.status).toBe(200);
      expect(ok.headers['x-ratelimit-remaining']).toBe(String(LIMIT - 1 - i));
    }
    const refused = await request(server).get('/ping');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  it('shares the count between two app instances on the same Redis', async () => {
    const prefix = `${PREFIX}shared:`;
    const [a, b] = [(await redisApp(prefix)).getHttpServer(), (await redisApp(prefix)).getHttpServer()];
    const statuses: number[] = [];
    for (const server of [a, b, a, b]) statuses.push((await request(server).get('/ping')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await request(a).get('/ping')).status).toBe(429);
  });

  it('works over the in-memory storage too', async () => {
    const app = await createApp(new InMemoryRateLimitStorage());
    apps.push(app);
    const statuses: number[] = [];
    for (let i = 0; i <= LIMIT; i++) statuses.push((await request(app.getHttpServer()).get('/ping')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('maps a decision onto the throttler record', async () => {
    let now = 1_700_000_040_000;
    const storage = new RateLimitThrottlerStorage(new InMemoryRateLimitStorage(), { now: () => now });
    expect(await storage.increment('k', 10_000, 2, 10_000, 'default')).toEqual({
      totalHits: 1,
      timeToExpire: 11, // the full allowance is back 1 ms into the next window
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    await storage.increment('k', 10_000, 2, 10_000, 'default');
    expect(await storage.increment('k', 10_000, 2, 10_000, 'default')).toEqual({
      totalHits: 3,
      timeToExpire: 16, // full allowance once 2 previous weigh < 1: half-way into the next window
      isBlocked: true,
      timeToBlockExpire: 11, // room again once 2 previous weigh < 2, 1 ms into the next window
    });
    now += 10_001;
    expect((await storage.increment('k', 10_000, 2, 10_000, 'default')).isBlocked).toBe(false);
  });
});
