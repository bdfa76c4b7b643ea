import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS } from './redis-rate-limit.storage.js';
import { RedisRevocationBroadcaster } from './redis-revocation-broadcaster.js';
import { type RevocationRecord } from '../store/session-store.interface.js';

const REDIS_PORT = Number(new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379').port || 6379);
const entry = (key = `sid:${randomUUID()}`): RevocationRecord => ({
  key,
  expiresAt: Date.now() + 60_000,
  createdAt: Date.now(),
});

async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('RedisRevocationBroadcaster', () => {
  const clients: Redis[] = [];
  const broadcasters: RedisRevocationBroadcaster[] = [];
  /** A fail-fast client like the apps use (offline queue off), or a plain one for publishing. */
  const client = (port = REDIS_PORT, failFast = true) => {
    const redis = new Redis({ port, host: '127.0.0.1', ...(failFast ? RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS : {}) });
    redis.on('error', () => undefined);
    clients.push(redis);
    return redis;
  };
  afterEach(async () => {
    for (const b of broadcasters.splice(0)) await b.close();
    for (const c of clients.splice(0)) c.disconnect();
  });

  it('delivers what one instance publishes to every subscriber, and drops malformed messages', async () => {
    const channel = `otp:test:${randomUUID()}`;
    const received: RevocationRecord[] = [];
    const subscriber = new RedisRevocationBroadcaster({ client: client(), channel });
    broadcasters.push(subscriber);
    await subscriber.subscribe((e) => received.push(e));
    const publisher = new RedisRevocationBroadcaster({ client: client(REDIS_PORT, false), channel });
    const sent = entry();
    const raw = client(REDIS_PORT, false);
    await raw.publish(channel, '{"key":"evil:x","expiresAt":1,"createdAt":1}');
    await raw.publish(channel, 'not json');
    await publisher.publish(sent);
    await until(() => received.length > 0, 2000);
    expect(received).toEqual([sent]);
  });

  it('does not fail startup while Redis is down, and subscribes once it is back', async () => {
    // A port with nothing behind it yet; later a proxy to the real Redis opens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));

    const channel = `otp:test:${randomUUID()}`;
    const received: RevocationRecord[] = [];
    const broadcaster = new RedisRevocationBroadcaster({ client: client(port), channel });
    broadcasters.push(broadcaster);
    const started = Date.now();
    await broadcaster.subscribe((e) => received.push(e)); // resolves, does not throw
    expect(Date.now() - started).toBeLessThan(3000);

    const sockets = new Set<Socket>();
    const proxy: Server = createServer((socket) => {
      const upstream = connect(REDIS_PORT, '127.0.0.1');
      sockets.add(socket).add(upstream);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    try {
      const sent = entry();
      const publisher = client(REDIS_PORT, false);
      // Publish until the subscription has come up (reconnect back-off is up to 2 s).
      const end = Date.now() + 8000;
      while (received.length === 0 && Date.now() < end) {
        await publisher.publish(channel, JSON.stringify(sent));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(received[0]).toEqual(sent);
    } finally {
      await broadcaster.close();
      broadcasters.length = 0;
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  }, 15_000);
});
