import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS, RedisRateLimitStorage } from '../redis/redis-rate-limit.storage.js';
import {
  FallbackRateLimitStorage,
  type FallbackRateLimitStorageOptions,
  type RateLimitStorageErrorInfo,
} from './fallback-rate-limit.storage.js';
import type { RateLimitCounter } from './rate-limit-storage.interface.js';
import { RateLimitStorageTimeoutError, RateLimitUnavailableError } from '../errors.js';

const REDIS = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const PREFIX = `otp:rl:test:${randomUUID()}:`;
const T0 = 1_700_000_040_000;
const counter = (key: string, limit = 2): RateLimitCounter => ({ key, limit, windowMs: 60_000 });

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A loopback port nothing listens on: connections are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

/** An ioredis client as the docs recommend, not printing its connection errors. */
function client(port: number, extra: RedisOptions = {}): Redis {
  // disconnectTimeout: do not keep Jest waiting 2 s on a socket that never closes cleanly.
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    ...RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS,
    disconnectTimeout: 50,
    ...extra,
  });
  redis.on('error', () => undefined);
  return redis;
}

/** A TCP proxy in front of the real Redis that can be cut, made silent, and restored. */
interface RedisProxy {
  readonly port: number;
  /** Stop accepting connections and drop the live ones (Redis unreachable). */
  cut(): Promise<void>;
  /** Listen again on the same port. */
  restore(): Promise<void>;
  /** Keep connections open but stop forwarding (a Redis that hangs). */
  silence(): void;
  close(): Promise<void>;
}

async function startRedisProxy(): Promise<RedisProxy> {
  const sockets = new Set<Socket>();
  let silent = false;
  const server = createServer((downstream) => {
    const upstream = connect(Number(REDIS.port || 6379), REDIS.hostname);
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.on('data', (chunk: Buffer) => silent || upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => silent || downstream.write(chunk));
  });
  const port = await listen(server);
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port,
    cut: () => {
      const closed = closeServer(server);
      dropAll();
      return closed;
    },
    restore: () => listen(server, port).then(() => undefined),
    silence: () => {
      silent = true;
    },
    close: () => {
      const closed = server.listening ? closeServer(server) : Promise.resolve();
      dropAll();
      return closed;
    },
  };
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
}

describe('FallbackRateLimitStorage', () => {
  const clients: Redis[] = [];
  const proxies: RedisProxy[] = [];
  let direct: Redis;

  beforeAll(() => {
    direct = new Redis(REDIS.href);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  afterAll(async () => {
    const keys = await direct.keys(`${PREFIX}*`);
    if (keys.length > 0) await direct.del(...keys);
    await direct.quit();
  });

  /** A fallback over a Redis client that cannot connect (closed loopback port). */
  async function overDeadRedis(options: Omit<FallbackRateLimitStorageOptions, 'primary'> = {}) {
    const dead = client(await closedPort());
    clients.push(dead);
    const errors: [unknown, RateLimitStorageErrorInfo][] = [];
    const storage = new FallbackRateLimitStorage({
      primary: new RedisRateLimitStorage({ client: dead, keyPrefix: PREFIX }),
      onError: (error, info) => errors.push([error, info]),
      ...options,
    });
    return { storage, errors };
  }

  describe('with Redis unreachable (connection refused)', () => {
    it("'local' (default): limits still hold, per instance, within milliseconds", async () => {
      const { storage, errors } = await overDeadRedis();
      const results: boolean[] = [];
      for (let i = 0; i < 3; i++) {
        const [decision, ms] = await timed(() => storage.consume([counter('local')], T0));
        expect(ms).toBeLessThan(50);
        results.push(decision.allowed);
      }
      expect(results).toEqual([true, true, false]);
      expect(storage.degraded).toBe(true);
      expect(errors).toHaveLength(1); // later failures skip Redis until the probe interval
      expect(errors[0]![1]).toEqual({ operation: 'consume', policy: 'local', suppressed: 0 });
    });

    it("'fail-closed': throws RateLimitUnavailableError with a retry delay, within milliseconds", async () => {
      const { storage } = await overDeadRedis({ policy: 'fail-closed', probeIntervalMs: 5000 });
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        const error: unknown = await storage.consume([counter('closed')], T0).catch((e: unknown) => e);
        expect(performance.now() - started).toBeLessThan(50);
        expect(error).toBeInstanceOf(RateLimitUnavailableError);
        expect((error as RateLimitUnavailableError).retryAfterMs).toBeGreaterThan(4000);
        expect((error as RateLimitUnavailableError).retryAfterMs).toBeLessThanOrEqual(5000);
      }
    });

    it("'fail-open': allows everything, within milliseconds", async () => {
      const { storage } = await overDeadRedis({ policy: 'fail-open' });
      for (let i = 0; i < 5; i++) {
        const [decision, ms] = await timed(() => storage.consume([counter('open')], T0));
        expect(ms).toBeLessThan(50);
        expect(decision).toEqual({
          allowed: true,
          counters: [{ key: 'open', limit: 2, windowMs: 60_000, remaining: 2, retryAfterMs: 0, resetMs: 0 }],
        });
      }
    });

    it('init() reports and re-throws the failure, and applies the policy from the first request', async () => {
      const { storage, errors } = await overDeadRedis({ policy: 'fail-closed' });
      await expect(storage.init()).rejects.toThrow();
      expect(storage.degraded).toBe(true);
      expect(errors.map(([, info]) => info.operation)).toEqual(['init']);
      await expect(storage.consume([counter('init')], T0)).rejects.toBeInstanceOf(RateLimitUnavailableError);
    });

    it('reports errors at most once per interval, with the number swallowed', async () => {
      // Probe on every call, so every call fails against Redis.
      const { storage, errors } = await overDeadRedis({ probeIntervalMs: 0, errorReportIntervalMs: 100 });
      for (let i = 0; i < 20; i++) await storage.consume([counter(`flood${i}`)], T0);
      expect(errors).toHaveLength(1);
      await sleep(120);
      await storage.consume([counter('after')], T0);
      expect(errors).toHaveLength(2);
      expect(errors[1]![1].suppressed).toBe(19);
    });

    it('swallows a failed reset (reported), and still resets the local counters', async () => {
      const { storage, errors } = await overDeadRedis();
      await storage.consume([counter('r', 1)], T0);
      expect((await storage.consume([counter('r', 1)], T0)).allowed).toBe(false);
      await storage.reset(['r']);
      expect(errors.map(([, info]) => info.operation)).toEqual(['consume']); // reset's report rate-limited
      expect((await storage.consume([counter('r', 1)], T0)).allowed).toBe(true);
    });
  });

  it('times out a Redis that stops answering', async () => {
    const proxy = await startRedisProxy();
    proxies.push(proxy);
    // No ioredis commandTimeout: only the wrapper's timeout can save the request.
    const hanging = client(proxy.port, { commandTimeout: undefined });
    clients.push(hanging);
    await new Promise<void>((resolve) => hanging.once('ready', () => resolve()));
    const errors: unknown[] = [];
    const storage = new FallbackRateLimitStorage({
      primary: new RedisRateLimitStorage({ client: hanging, keyPrefix: PREFIX }),
      timeoutMs: 100,
      onError: (error) => errors.push(error),
    });
    expect((await storage.consume([counter('hang')], T0)).allowed).toBe(true);
    expect(storage.degraded).toBe(false);

    proxy.silence();
    const [decision, ms] = await timed(() => storage.consume([counter('hang')], T0));
    expect(decision.allowed).toBe(true); // counted locally
    expect(ms).toBeGreaterThanOrEqual(95);
    expect(ms).toBeLessThan(200);
    expect(errors[0]).toBeInstanceOf(RateLimitStorageTimeoutError);
    // Until the next probe, calls do not wait for Redis at all.
    const [, nextMs] = await timed(() => storage.consume([counter('hang')], T0));
    expect(nextMs).toBeLessThan(20);
  });

  it('re-throws a RangeError (an invalid counter) instead of treating it as an outage', async () => {
    const errors: unknown[] = [];
    const storage = new FallbackRateLimitStorage({
      primary: new RedisRateLimitStorage({ client: direct, keyPrefix: PREFIX }),
      policy: 'fail-open',
      onError: (error) => errors.push(error),
    });
    await expect(storage.consume([{ key: 'bad', limit: 0, windowMs: 1000 }], T0)).rejects.toThrow(RangeError);
    expect(errors).toHaveLength(0);
    expect(storage.degraded).toBe(false);
  });

  it('falls back when the connection to Redis is cut, and uses Redis again once it is back', async () => {
    const proxy = await startRedisProxy();
    proxies.push(proxy);
    const viaProxy = client(proxy.port, { retryStrategy: () => 20 });
    clients.push(viaProxy);
    await new Promise<void>((resolve) => viaProxy.once('ready', () => resolve()));

    let recovered = 0;
    const errors: unknown[] = [];
    const storage = new FallbackRateLimitStorage({
      primary: new RedisRateLimitStorage({ client: viaProxy, keyPrefix: PREFIX }),
      probeIntervalMs: 50,
      onError: (error) => errors.push(error),
      onRecover: () => recovered++,
    });
    const c = counter('cut', 10);
    const countInRedis = () => direct.hget(`${PREFIX}cut`, 'c');

    await storage.consume([c], T0);
    expect(await countInRedis()).toBe('1');

    await proxy.cut();
    while (viaProxy.status === 'ready') await sleep(5);
    const [local, ms] = await timed(() => storage.consume([c], T0));
    expect(ms).toBeLessThan(50);
    expect(local.allowed).toBe(true);
    expect(local.counters[0]!.remaining).toBe(9); // the local counter starts empty
    expect(storage.degraded).toBe(true);
    expect(errors).toHaveLength(1);
    expect(await countInRedis()).toBe('1');

    // Restore on the same port; ioredis reconnects, the next probe finds Redis again.
    await proxy.restore();
    await new Promise<void>((resolve) => viaProxy.once('ready', () => resolve()));
    const deadline = performance.now() + 2000;
    while (storage.degraded && performance.now() < deadline) {
      await storage.consume([c], T0);
      await sleep(10);
    }
    expect(storage.degraded).toBe(false);
    expect(recovered).toBe(1);
    const before = Number(await countInRedis());
    const back = await storage.consume([c], T0);
    expect(Number(await countInRedis())).toBe(before + 1);
    expect(back.counters[0]!.remaining).toBe(10 - before - 1);
  });
});
