import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { UnauthorizedException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import {
  InMemoryRateLimitStorage,
  OTP_RATE_LIMIT_STORAGE,
  OtpAuthConfigurationError,
  OtpAuthModule,
  OtpAuthService,
  deriveStatelessCode,
  SecretKeys,
  windowCounter,
  type OtpAuthModuleOptions,
  type RateLimitCounter,
  type RateLimitDecision,
  type RateLimitStorage,
  type TimedOtpAuthEvent,
} from 'nestjs-otp-auth';
import { RedisRateLimitStorage } from 'nestjs-otp-auth/redis';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { createTestDatabase, enabledBackends, type TestDatabase } from './support/databases.js';
import { capturedLogs, CapturingLogger } from './support/log-capture.js';
import { createTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';
import { TestUser } from './support/test-user.entity.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const WINDOW = 300;

describe.each(enabledBackends())('stateless codes on %s', (backend) => {
  const apps: TestApp[] = [];
  let events: TimedOtpAuthEvent[];
  const start = async (options: Partial<OtpAuthModuleOptions> = {}) => {
    const app = await createTestApp({
      backend,
      options: {
        codeMode: 'stateless',
        stateless: { window: WINDOW, drift: 1 },
        resendCooldown: 30,
        onEvent: (e) => void events.push(e),
        ...options,
      },
    });
    apps.push(app);
    return app;
  };
  beforeEach(() => {
    events = [];
  });
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.close();
  });

  const windowEnd = (t: TestApp) => (Math.floor(t.clock.now() / (WINDOW * 1000)) + 1) * WINDOW * 1000;

  it('reports the real remaining lifetime, signs in once per code, and stores no code', async () => {
    const t = await start();
    const email = 'stateless@example.com';
    const requested = await t.http().post('/auth/request-otp').send({ email }).expect(200);
    // The code lives to the end of its window plus one drift window.
    const expected = Math.round((windowEnd(t) + WINDOW * 1000 - t.clock.now()) / 1000);
    expect(requested.body.expires_in).toBe(expected);
    expect(t.sent[0]).toMatchObject({ email, code: expect.stringMatching(/^\d{6}$/) });
    const code = t.lastCode(email);

    await t.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(401); // replay
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM otp_codes');
    expect(Number(n)).toBe(0);
    expect(events.map((e) => e.type)).toContain('code.verified');
    expect(events.find((e) => e.type === 'code.failed')).toMatchObject({ reason: 'already_used' });
  });

  it('refuses a code of other characters through the service API with 401, never a 500', async () => {
    const t = await start();
    const email = 'wide@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const auth = t.app.get(OtpAuthService);
    for (const code of ['１２３４５６', '12345é', '1234567', '']) {
      await expect(auth.verifyOtp(email, code)).rejects.toBeInstanceOf(UnauthorizedException);
    }
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email, code: t.lastCode(email) })
      .expect(200);
  });

  it('accepts only codes that were issued: never-requested addresses and untaken slots are refused', async () => {
    const t = await start();
    const keys = new SecretKeys(TEST_SECRET);
    const window = windowCounter(t.clock.now(), WINDOW);
    const forged = (email: string, slot: number, epoch?: string) =>
      deriveStatelessCode(keys.statelessCode, 'login', email, window * 16 + slot, 6, epoch);
    // The address's epoch, as the module stores it (a value already there is returned as is).
    const epochOf = (email: string) =>
      t.app.get<RateLimitStorage>(OTP_RATE_LIMIT_STORAGE).getOrSet!(
        `sl:epoch:${keys.identityKeyOf(email)}`,
        'not-the-epoch',
        60_000,
        t.clock.now(),
      );
    // Someone holding the derivation but no issued code gets nowhere.
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'never@example.com', code: forged('never@example.com', 0) })
      .expect(401);
    await t.http().post('/auth/request-otp').send({ email: 'once@example.com' }).expect(200);
    const epoch = await epochOf('once@example.com');
    expect(epoch).toMatch(/^[\w-]{22}$/); // 128 random bits
    expect(t.lastCode('once@example.com')).toBe(forged('once@example.com', 0, epoch)); // the derivation is what was sent
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'once@example.com', code: forged('once@example.com', 1, epoch) })
      .expect(401);
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'once@example.com', code: t.lastCode('once@example.com') })
      .expect(200);
  });

  it('answers 503 (never a replayable code) while Redis is down, whatever the rate-limit policy', async () => {
    const t = await start({
      rateLimits: {
        enabled: false,
        onStorageError: 'fail-open',
        storage: new RedisRateLimitStorage({ url: 'redis://127.0.0.1:1' }),
      },
    });
    const res = await t.http().post('/auth/request-otp').send({ email: 'down@example.com' }).expect(503);
    expect(res.body.message).toMatch(/unavailable/i);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    const verify = await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'down@example.com', code: '123456' })
      .expect(503);
    expect(Number(verify.headers['retry-after'])).toBeGreaterThan(0);
    expect(t.sent).toHaveLength(0);
  });

  it('lost state (a restart with fresh memory) never issues a used code again', async () => {
    const before = await start();
    const email = 'restarted@example.com';
    await before.http().post('/auth/request-otp').send({ email }).expect(200);
    const used = before.lastCode(email);
    await before.http().post('/auth/verify-otp').send({ email, code: used }).expect(200);
    // The restarted instance: same database, same moment, empty in-memory markers.
    const after = await createTestApp({
      backend,
      database: before.database,
      options: { codeMode: 'stateless', stateless: { window: WINDOW, drift: 1 }, clock: before.clock.now },
    });
    apps.push(after);
    await after.http().post('/auth/verify-otp').send({ email, code: used }).expect(401);
    // Same address, window and slot as the used code: without the epoch, the very same code.
    await after.http().post('/auth/request-otp').send({ email }).expect(200);
    const reissued = after.lastCode(email);
    expect(reissued).not.toBe(used);
    await after.http().post('/auth/verify-otp').send({ email, code: used }).expect(401);
    await after.http().post('/auth/verify-otp').send({ email, code: reissued }).expect(200);
  });

  it('lost state (the Redis keys flushed) never issues a used code again', async () => {
    const prefix = `otp:test:${randomUUID()}:`;
    const redis = new Redis(REDIS_URL);
    try {
      const t = await start({
        rateLimits: { enabled: false, storage: new RedisRateLimitStorage({ url: REDIS_URL, keyPrefix: prefix }) },
      });
      const email = 'flushed@example.com';
      await t.http().post('/auth/request-otp').send({ email }).expect(200);
      const used = t.lastCode(email);
      await t.http().post('/auth/verify-otp').send({ email, code: used }).expect(200);
      const flush = async () => {
        const keys = await redis.keys(`${prefix}*`);
        expect(keys.length).toBeGreaterThan(0);
        await redis.del(...keys);
      };
      await flush(); // a FLUSHALL, a failover to an empty replica, an eviction
      await t.http().post('/auth/request-otp').send({ email }).expect(200); // the cooldown went too
      const reissued = t.lastCode(email);
      expect(reissued).not.toBe(used);
      await t.http().post('/auth/verify-otp').send({ email, code: used }).expect(401);
      // Only the epoch lost, the slot counters kept: no earlier code matches any more (safe side).
      const key = `${prefix}sl:epoch:${new SecretKeys(TEST_SECRET).identityKeyOf(email)}`;
      expect(await redis.del(key)).toBe(1);
      await t.http().post('/auth/verify-otp').send({ email, code: reissued }).expect(401);
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  it('gives a second sign-in in the same window a new code, after the cooldown', async () => {
    const t = await start();
    const email = 'twice@example.com';
    // Stay inside one window for the whole test.
    if (windowEnd(t) - t.clock.now() < 120_000) t.clock.advance((windowEnd(t) - t.clock.now()) / 1000 + 1);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const first = t.lastCode(email);
    const early = await t.http().post('/auth/request-otp').send({ email }).expect(429);
    expect(Number(early.headers['retry-after'])).toBeGreaterThan(0);
    await t.http().post('/auth/verify-otp').send({ email, code: first }).expect(200);
    t.clock.advance(31);
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const second = t.lastCode(email);
    expect(second).not.toBe(first);
    await t.http().post('/auth/verify-otp').send({ email, code: second }).expect(200);
  });

  it('accepts a code through the drift window and refuses it after', async () => {
    const t = await start();
    const email = 'drift@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    t.clock.advance((windowEnd(t) - t.clock.now()) / 1000 + WINDOW - 1); // last second of the next window
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(200);

    await t.http().post('/auth/request-otp').send({ email: 'late@example.com' }).expect(200);
    const late = t.lastCode('late@example.com');
    t.clock.advance((windowEnd(t) - t.clock.now()) / 1000 + WINDOW + 1); // past the drift window
    await t.http().post('/auth/verify-otp').send({ email: 'late@example.com', code: late }).expect(401);
  });

  it('caps guesses: 40 parallel wrong guesses evaluate at most maxAttempts, then even the right code fails', async () => {
    const t = await start({ maxAttempts: 3 });
    const email = 'guessed@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    const wrong = code === '000000' ? '000001' : '000000';
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => t.http().post('/auth/verify-otp').send({ email, code: wrong })),
    );
    expect(answers.every((a) => a.status === 401)).toBe(true);
    expect(events.filter((e) => e.type === 'code.failed' && e.reason === 'wrong')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'code.locked_out')).toHaveLength(37);
    await t.http().post('/auth/verify-otp').send({ email, code }).expect(401);
  });

  it('30 parallel submissions of the right code give exactly one session', async () => {
    const t = await start({ maxAttempts: 50 });
    const email = 'race@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = t.lastCode(email);
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => t.http().post('/auth/verify-otp').send({ email, code })),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 401)).toHaveLength(29);
  });

  it('works across two instances through Redis: issued on one, used on the other, replay refused on both', async () => {
    const prefix = `otp:test:${randomUUID()}:`;
    const storage = () => new RedisRateLimitStorage({ url: REDIS_URL, keyPrefix: prefix });
    const a = await start({ rateLimits: { enabled: false, storage: storage() } });
    const b = await createTestApp({
      backend,
      database: a.database,
      options: {
        codeMode: 'stateless',
        stateless: { window: WINDOW, drift: 1 },
        resendCooldown: 30,
        rateLimits: { enabled: false, storage: storage() },
        clock: a.clock.now,
      },
    });
    apps.push(b);
    const email = 'two-instances@example.com';
    await a.http().post('/auth/request-otp').send({ email }).expect(200);
    await b.http().post('/auth/request-otp').send({ email }).expect(429); // the cooldown is shared
    const code = a.lastCode(email);
    await b.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    await a.http().post('/auth/verify-otp').send({ email, code }).expect(401);
    await b.http().post('/auth/verify-otp').send({ email, code }).expect(401);
  });
});

/** A storage of the app's own, from before `getOrSet` existed. */
class LegacyStorage implements RateLimitStorage {
  private readonly inner = new InMemoryRateLimitStorage();
  consume(counters: readonly RateLimitCounter[], now: number): Promise<RateLimitDecision> {
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

// Checks of the marker storage at startup; they do not depend on the database.
describe('stateless marker storage at startup', () => {
  let db: TestDatabase;
  const prefix = `otp:test:${randomUUID()}:`;
  const broadcaster = { publish: async () => undefined, subscribe: async () => undefined };

  beforeAll(async () => {
    db = await createTestDatabase('sqlite', [TestUser, ...otpAuthEntities]);
  });
  afterAll(async () => {
    await db.drop();
  });

  /** Starts and stops the module (init hooks included); resolves to the warnings it logged. */
  async function boot(options: Partial<OtpAuthModuleOptions>): Promise<string[]> {
    const before = capturedLogs.length;
    const ref = await Test.createTestingModule({
      imports: [
        OtpAuthModule.forRoot({
          secret: TEST_SECRET,
          store: new TypeOrmOtpAuthStore(db.dataSource, { userEntity: TestUser }),
          sendOtp: async () => undefined,
          codeMode: 'stateless',
          rateLimits: { enabled: false },
          cleanupInterval: false,
          ...options,
        }),
      ],
    })
      .setLogger(new CapturingLogger())
      .compile();
    try {
      await ref.init();
    } finally {
      await ref.close();
    }
    return capturedLogs.slice(before).filter((line) => line.startsWith('warn '));
  }
  const redisStorage = (url = REDIS_URL) => new RedisRateLimitStorage({ url, keyPrefix: prefix });
  /**
   * Runs `body` against a Redis server of this test's own, started with `policy`: the shared one
   * is never reconfigured, since suites running in parallel start stateless apps on it.
   */
  async function withPolicy<T>(policy: string, body: (url: string) => Promise<T>): Promise<T> {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
      probe.on('error', reject);
    });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const server = spawn('redis-server', [...args, '--maxmemory-policy', policy], { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    try {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
      client.on('error', () => undefined);
      for (let tries = 0; ; tries += 1) {
        try {
          await client.connect();
          await client.ping();
          break;
        } catch (error) {
          if (tries > 100) throw error;
          client.disconnect();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      await client.quit();
      return await body(url);
    } finally {
      server.kill();
    }
  }

  it('refuses in-memory markers on several instances, saying how to fix it', async () => {
    for (const options of [
      { revocationBroadcaster: broadcaster },
      { stateless: { multiInstance: true } },
      { revocationBroadcaster: broadcaster, rateLimits: { enabled: false, storage: new InMemoryRateLimitStorage() } },
    ] satisfies Partial<OtpAuthModuleOptions>[]) {
      const refused = boot(options);
      await expect(refused).rejects.toBeInstanceOf(OtpAuthConfigurationError);
      await expect(refused).rejects.toThrow(/several instances.*in-memory.*RedisRateLimitStorage/);
    }
    // Stored codes keep nothing there; an explicit single instance is believed.
    await boot({ codeMode: 'stored', revocationBroadcaster: broadcaster });
    await boot({ revocationBroadcaster: broadcaster, stateless: { multiInstance: false } });
  });

  it('warns once that in-memory markers are per process and lost on restart; Redis starts quietly', async () => {
    const warnings = await boot({});
    expect(warnings.filter((w) => w.includes('Stateless codes keep their markers in memory'))).toHaveLength(1);
    expect(warnings.join('\n')).toMatch(/lost on restart/);
    const quiet = await boot({
      stateless: { multiInstance: true },
      revocationBroadcaster: broadcaster,
      rateLimits: { enabled: false, storage: redisStorage() },
    });
    expect(quiet).toEqual([]);
  });

  it('refuses a storage without getOrSet (no per-address epoch)', async () => {
    await expect(boot({ rateLimits: { enabled: false, storage: new LegacyStorage() } })).rejects.toThrow(
      /has no `getOrSet`/,
    );
    await boot({ codeMode: 'stored', rateLimits: { enabled: false, storage: new LegacyStorage() } });
  });

  it.each(['allkeys-lru', 'volatile-ttl'])(
    'refuses a Redis with maxmemory-policy %s for stateless codes, and only warns for request limits',
    async (policy) => {
      const refused = await withPolicy(policy, (url) =>
        boot({ rateLimits: { enabled: false, storage: redisStorage(url) } }).then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      expect(refused).toBeInstanceOf(OtpAuthConfigurationError);
      expect((refused as Error).message).toContain(`maxmemory-policy ${policy}`);
      expect((refused as Error).message).toMatch(/maxmemory-policy noeviction/);

      const warnings = await withPolicy(policy, (url) =>
        boot({ codeMode: 'stored', rateLimits: { enabled: true, storage: redisStorage(url) } }),
      );
      expect(warnings.some((w) => w.includes(`maxmemory-policy ${policy}`) && w.includes('noeviction'))).toBe(true);
    },
  );
});
