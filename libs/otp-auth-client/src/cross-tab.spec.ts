import { OtpAuthClient } from './client.js';
import type { LockManagerLike } from './cross-tab.js';
import type { SessionChangeEvent } from './types.js';
import { FakeAuthServer, FakeBus, FakeClock, FakeLocks, tick } from './__spec__/fakes.js';

const BASE = 'https://auth.example.test';
const API = 'https://auth.example.test/api/data';

/**
 * Browser tabs of one origin: one cookie jar (the fake server holds it), one BroadcastChannel
 * bus, one Web Locks manager (or none).
 */
function browser(options: { locks?: boolean; peerTimeout?: number } = {}) {
  const clock = new FakeClock();
  const server = new FakeAuthServer('cookie', clock);
  const bus = new FakeBus();
  const locks: LockManagerLike | null = options.locks === false ? null : new FakeLocks();
  const tabs: { client: OtpAuthClient; events: SessionChangeEvent[] }[] = [];
  const open = () => {
    const client = new OtpAuthClient({
      baseUrl: BASE,
      fetch: server.fetch,
      clock,
      crossTab: { createChannel: bus.create, locks, peerTimeout: options.peerTimeout ?? 150 },
    });
    const events: SessionChangeEvent[] = [];
    client.onSessionChange((event) => events.push(event));
    const tab = { client, events };
    tabs.push(tab);
    return tab;
  };
  return { clock, server, bus, locks, open, tabs };
}

async function signIn(client: OtpAuthClient) {
  const result = await client.verifyOtp({ email: 'ada@example.com', code: '123456' });
  if (result.type !== 'signed_in') throw new Error('expected a session');
  return result.session;
}

describe.each([true, false])('cross-tab coordination (Web Locks: %s)', (withLocks) => {
  it('a sign-in in one tab signs in the others, without their own request', async () => {
    const { open, server } = browser({ locks: withLocks });
    const a = open();
    const b = open();
    const session = await signIn(a.client);
    await tick(5);
    expect(b.client.getSession()?.accessToken).toBe(session.accessToken);
    expect(b.events).toEqual([{ type: 'signed_in', session: b.client.getSession(), source: 'other_tab' }]);
    expect(server.calls.map((c) => c.path)).toEqual(['/auth/verify-otp']);
    expect((await b.client.fetch(API)).status).toBe(200);
  });

  it('a tab opened later gets the access token from another tab instead of refreshing', async () => {
    const { open, server } = browser({ locks: withLocks });
    const a = open();
    const session = await signIn(a.client);
    const c = open();
    const restored = await c.client.restore();
    expect(restored?.accessToken).toBe(session.accessToken);
    expect(server.count('/auth/refresh')).toBe(0);
    expect(c.events).toEqual([{ type: 'signed_in', session: restored, source: 'other_tab' }]);
  });

  it('with no other tab, restore() asks, waits peerTimeout, then refreshes with the cookie', async () => {
    const { open, server, clock } = browser({ locks: withLocks });
    server.issue(); // a cookie from an earlier visit
    const a = open();
    const restoring = a.client.restore();
    await tick(5);
    expect(server.count('/auth/refresh')).toBe(0);
    await clock.advance(150);
    await tick(10);
    expect(await restoring).not.toBeNull();
    expect(server.count('/auth/refresh')).toBe(1);
  });

  it('two tabs whose token was refused refresh once between them; the other adopts the new token', async () => {
    const { open, server } = browser({ locks: withLocks });
    const a = open();
    const b = open();
    await signIn(a.client);
    await tick(5);
    server.revokeAccessTokens();

    let release!: () => void;
    server.refreshGate = new Promise((resolve) => (release = resolve));
    const fromA = Array.from({ length: 5 }, () => a.client.fetch(API));
    while (server.count('/auth/refresh') === 0) await tick(1);
    // B's requests get their 401 while A's refresh is in flight (with Web Locks, whatever the timing).
    const fromB = Array.from({ length: 5 }, () => b.client.fetch(API));
    await tick(10);
    release();
    const statuses = (await Promise.all([...fromA, ...fromB])).map((r) => r.status);
    expect(statuses).toEqual(Array(10).fill(200));
    expect(server.count('/auth/refresh')).toBe(1);
    await tick(5);
    expect(b.client.getSession()!.accessToken).toBe(a.client.getSession()!.accessToken);
    expect(b.events.at(-1)).toMatchObject({ type: 'refreshed', source: 'other_tab' });
  });

  it('proactive refresh: the timers of both tabs fire, one tab refreshes, the other takes its token', async () => {
    const { open, server, clock } = browser({ locks: withLocks });
    const a = open();
    const b = open();
    const first = await signIn(a.client);
    await tick(5);
    await clock.advance(600_000 - 60_000 + 1);
    for (let i = 0; i < 5; i++) await tick(5);
    expect(server.count('/auth/refresh')).toBe(1);
    const next = a.client.getSession()!;
    expect(next.accessToken).not.toBe(first.accessToken);
    expect(b.client.getSession()!.accessToken).toBe(next.accessToken);
  });

  it('logout in one tab signs out every tab', async () => {
    const { open } = browser({ locks: withLocks });
    const a = open();
    const b = open();
    await signIn(a.client);
    await tick(5);
    await b.client.logout();
    await tick(5);
    expect(a.client.status).toBe('signed_out');
    expect(a.events.at(-1)).toEqual({ type: 'signed_out', session: null, reason: 'logout', source: 'other_tab' });
    expect(b.events.at(-1)).toEqual({ type: 'signed_out', session: null, reason: 'logout', source: 'this_tab' });
  });

  it('a refused refresh in one tab signs out the others (the cookie is shared, so theirs is dead too)', async () => {
    const { open, server } = browser({ locks: withLocks });
    const a = open();
    const b = open();
    await signIn(a.client);
    await tick(5);
    server.revokeAll();
    await expect(a.client.fetch(API)).rejects.toMatchObject({ code: 'unauthorized' });
    await tick(5);
    expect(b.client.status).toBe('signed_out');
    expect(b.events.at(-1)).toMatchObject({ type: 'signed_out', reason: 'session_ended', source: 'other_tab' });
    expect(server.count('/auth/refresh')).toBe(1);
  });
});

describe('cross-tab coordination, the lock race', () => {
  it('a tab granted the lock before the new token reached it waits for it instead of refreshing again', async () => {
    // FakeLocks grants the next waiter in a microtask, while messages arrive a macrotask later:
    // B holds the lock before A's token arrives. A's "refreshing" announcement (sent a network
    // round trip earlier) makes B wait for A's result.
    const { open, server, locks } = browser();
    const a = open();
    const b = open();
    await signIn(a.client);
    await tick(5);
    server.revokeAccessTokens();
    const [fromA, fromB] = await Promise.all([a.client.refresh(), b.client.refresh()]);
    expect(server.count('/auth/refresh')).toBe(1);
    expect(fromB.accessToken).toBe(fromA.accessToken);
    expect((locks as FakeLocks).granted).toBe(2);
  });

  it('without Web Locks, tabs that start refreshing at the same instant both rotate; the server grace period keeps one session', async () => {
    const { open, server } = browser({ locks: false });
    const a = open();
    const b = open();
    await signIn(a.client);
    await tick(5);
    const [fromA, fromB] = await Promise.all([a.client.refresh(), b.client.refresh()]);
    expect(server.count('/auth/refresh')).toBe(2);
    expect(fromA.claims.sid).toBe(fromB.claims.sid);
    expect(a.client.status).toBe('signed_in');
    expect(b.client.status).toBe('signed_in');
  });

  it('ignores foreign and malformed messages on the channel', async () => {
    const { open, bus } = browser();
    const a = open();
    const other = bus.create('nestjs-otp-auth:https://auth.example.test/auth');
    other.postMessage({ type: 'signed_out', reason: 'logout' });
    other.postMessage({ protocol: 'nestjs-otp-auth-client/1', from: 'x', type: 'session', accessToken: 42 });
    other.postMessage({
      protocol: 'nestjs-otp-auth-client/1',
      from: 'x',
      type: 'session',
      kind: 'refreshed',
      accessToken: 'not-a-jwt',
      expiresAt: 1,
      receivedAt: 0,
    });
    other.postMessage('hello');
    await tick(5);
    expect(a.client.status).toBe('unknown');
    expect(a.events).toEqual([]);
  });

  it('close() leaves the channel', async () => {
    const { open } = browser();
    const a = open();
    const b = open();
    b.client.close();
    await signIn(a.client);
    await tick(5);
    expect(b.client.status).toBe('unknown');
  });
});

describe('cross-tab defaults', () => {
  it('is on by default in a browser page in cookie mode (the runtime BroadcastChannel), off in body mode and outside pages', async () => {
    const clock = new FakeClock();
    const server = new FakeAuthServer('cookie', clock);
    const global = globalThis as { document?: unknown; location?: unknown };
    const options = { baseUrl: BASE, fetch: server.fetch, clock };
    // Outside a page (Node): two clients of one process do not share sessions.
    const n1 = new OtpAuthClient(options);
    const n2 = new OtpAuthClient(options);
    await signIn(n1);
    await tick(10);
    expect(n2.status).toBe('unknown');
    n1.close();
    n2.close();

    global.document = {};
    try {
      const p1 = new OtpAuthClient(options);
      const p2 = new OtpAuthClient(options);
      const bodyMode = new OtpAuthClient({ ...options, refreshTokenDelivery: 'body' });
      await signIn(p1);
      await tick(20);
      expect(p2.status).toBe('signed_in');
      expect(bodyMode.status).toBe('unknown');
      p1.close();
      p2.close();
      bodyMode.close();
    } finally {
      delete global.document;
    }
  });

  it('never puts a token in localStorage or sessionStorage', async () => {
    const global = globalThis as Record<string, unknown>;
    const touched: string[] = [];
    const spy = (name: string) =>
      new Proxy(
        {},
        {
          get: (_target, key) => {
            touched.push(`${name}.${String(key)}`);
            return () => undefined;
          },
        },
      );
    global['localStorage'] = spy('localStorage');
    global['sessionStorage'] = spy('sessionStorage');
    try {
      const { open, server, clock } = browser();
      const a = open();
      const b = open();
      await signIn(a.client);
      await tick(5);
      server.revokeAccessTokens();
      await a.client.fetch(API);
      await clock.advance(600_000);
      await b.client.logout();
      expect(touched).toEqual([]);
    } finally {
      delete global['localStorage'];
      delete global['sessionStorage'];
    }
  });
});
