import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CleanupScheduler, type TimedOtpAuthEvent } from 'nestjs-otp-auth';
import { DataSource } from 'typeorm';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { createTestDatabase, enabledBackends, serverBackends, type Backend } from './support/databases.js';
import { createTestApp, refreshCookie, signIn, type TestApp } from './support/test-app.js';
import { TestUser } from './support/test-user.entity.js';

const DAY = 24 * 3600;
const TABLES = ['otp_codes', 'otp_refresh_tokens', 'otp_sessions', 'otp_revocations'] as const;

type CleanupEvent = Extract<TimedOtpAuthEvent, { type: 'cleanup.completed' | 'cleanup.failed' }>;

/** Collects events; `next(type)` resolves with the next one of that type (arriving or already there). */
function eventLog() {
  const events: TimedOtpAuthEvent[] = [];
  const waiting: { from: number; resolve: (event: TimedOtpAuthEvent) => void }[] = [];
  const isCleanup = (event: TimedOtpAuthEvent): boolean => event.type.startsWith('cleanup.');
  let seen = 0;
  const onEvent = (event: TimedOtpAuthEvent): void => {
    events.push(event);
    for (const waiter of waiting.splice(0)) {
      const found = events.slice(waiter.from).find(isCleanup);
      if (found) waiter.resolve(found);
      else waiting.push(waiter);
    }
  };
  /** The next cleanup event (completed or failed) after the last one `next` returned. */
  const next = (): Promise<CleanupEvent> =>
    new Promise((resolve) => {
      const from = seen;
      const settle = (event: TimedOtpAuthEvent): void => {
        seen = events.indexOf(event) + 1;
        resolve(event as CleanupEvent);
      };
      const found = events.slice(from).find(isCleanup);
      if (found) settle(found);
      else waiting.push({ from, resolve: settle });
    });
  const cleanups = () => events.filter(isCleanup);
  return { events, onEvent, next, cleanups };
}

async function counts(t: TestApp): Promise<Record<(typeof TABLES)[number], number>> {
  const result = {} as Record<(typeof TABLES)[number], number>;
  for (const table of TABLES) {
    const rows: { n: number | string }[] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`);
    result[table] = Number(rows[0]!.n);
  }
  return result;
}

/** A session that signs in, rotates its refresh token and logs out: a code, 2 tokens, a session, revocations. */
async function leaveRows(t: TestApp, email: string): Promise<void> {
  const signedIn = await signIn(t, email);
  const rotated = await t
    .http()
    .post('/auth/refresh')
    .set('cookie', `otp_refresh=${refreshCookie(signedIn)!}`)
    .expect(200);
  await t
    .http()
    .post('/auth/logout')
    .set('cookie', `otp_refresh=${refreshCookie(rotated)!}`)
    .set('authorization', `Bearer ${rotated.body.access_token as string}`)
    .expect(200);
}

// Only the module's timer functions are faked: database drivers, HTTP and Jest keep real time.
const fakeTimeouts = () =>
  jest.useFakeTimers({
    doNotFake: [
      'Date',
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'requestIdleCallback',
      'cancelIdleCallback',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
    ],
  });

describe.each(enabledBackends())('scheduled cleanup on %s', (backend) => {
  const apps: TestApp[] = [];
  beforeEach(() => {
    fakeTimeouts();
  });
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.close();
    jest.useRealTimers();
  });
  const start = async (options: Parameters<typeof createTestApp>[0]['options'], shared?: TestApp) => {
    const t = await createTestApp({ backend, options, ...(shared ? { database: shared.database } : {}) });
    apps.push(t);
    return t;
  };

  it('removes expired rows by itself (no cleanup() call), reports cleanup.completed, keeps live rows', async () => {
    const log = eventLog();
    const t = await start({ cleanupInterval: 60, onEvent: log.onEvent });
    expect(t.app.get(CleanupScheduler).scheduled).toBe(true);
    await leaveRows(t, 'old@example.com');
    t.clock.advance(8 * DAY); // past the refresh-token lifetime: every row above is expired
    await signIn(t, 'fresh@example.com'); // live rows, which must stay
    const before = await counts(t);
    expect(before.otp_refresh_tokens).toBe(3);

    // The first run comes within the first interval, not in its first half.
    await jest.advanceTimersByTimeAsync(29_999);
    expect(log.cleanups()).toEqual([]);
    await jest.advanceTimersByTimeAsync(30_001);
    const report = await log.next();
    expect(report).toMatchObject({
      type: 'cleanup.completed',
      codes: 1,
      refreshTokens: 2,
      sessions: 1,
      revocations: expect.any(Number),
      total: expect.any(Number),
      durationMs: expect.any(Number),
      at: t.clock.now(),
    });
    const after = await counts(t);
    expect(after).toEqual({ otp_codes: 1, otp_refresh_tokens: 1, otp_sessions: 1, otp_revocations: 0 });
    expect(report.type === 'cleanup.completed' && report.revocations).toBe(before.otp_revocations);
    if (report.type === 'cleanup.completed') {
      const removed = TABLES.reduce((sum, table) => sum + before[table] - after[table], 0);
      expect(report.total).toBe(removed);
    }
    // The fresh session still works.
    expect(await t.store.findUserByEmail('fresh@example.com')).not.toBeNull();

    // And again one interval (± 10 %) after the run ended, with nothing left to remove.
    await jest.advanceTimersByTimeAsync(66_000);
    expect(await log.next()).toMatchObject({ type: 'cleanup.completed', total: 0 });
    expect(log.cleanups().map((e) => e.type)).toEqual(['cleanup.completed', 'cleanup.completed']);
  });

  it('schedules nothing with cleanupInterval: false', async () => {
    const log = eventLog();
    const t = await start({ cleanupInterval: false, onEvent: log.onEvent });
    expect(t.app.get(CleanupScheduler).scheduled).toBe(false);
    await leaveRows(t, 'kept@example.com');
    t.clock.advance(8 * DAY);
    await jest.advanceTimersByTimeAsync(8 * DAY * 1000);
    expect(log.cleanups()).toEqual([]);
    expect((await counts(t)).otp_refresh_tokens).toBe(2);
  });

  it('by default plans the first run an hour out at most, never in the first 5 minutes', async () => {
    const log = eventLog();
    const t = await start({ onEvent: log.onEvent });
    expect(t.app.get(CleanupScheduler).scheduled).toBe(true);
    await jest.advanceTimersByTimeAsync(300_000 - 1);
    expect(log.cleanups()).toEqual([]);
    await jest.advanceTimersByTimeAsync(3_300_001);
    expect(await log.next()).toMatchObject({ type: 'cleanup.completed', total: 0 });
  });

  it('stops on app.close(): no timer left, no run afterwards', async () => {
    const log = eventLog();
    const t = await start({ cleanupInterval: 60, onEvent: log.onEvent });
    const scheduler = t.app.get(CleanupScheduler);
    expect(scheduler.scheduled).toBe(true);
    await apps.pop()!.close();
    expect(scheduler.scheduled).toBe(false);
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    expect(log.cleanups()).toEqual([]);
  });

  it('two instances on one database both clean, without a failure, each row removed once', async () => {
    const log = eventLog();
    const first = await start({ cleanupInterval: 60, onEvent: log.onEvent });
    const second = await start({ cleanupInterval: 60, onEvent: log.onEvent }, first);
    for (let i = 0; i < 5; i += 1) await leaveRows(first, `multi${i}@example.com`);
    const before = await counts(first);
    first.clock.advance(8 * DAY);
    second.clock.advance(8 * DAY);
    await jest.advanceTimersByTimeAsync(60_000); // both first runs are due within this minute
    const reports = [await log.next(), await log.next()];
    expect(log.cleanups().map((e) => e.type)).toEqual(['cleanup.completed', 'cleanup.completed']);
    const total = reports.reduce((sum, r) => sum + (r.type === 'cleanup.completed' ? r.total : 0), 0);
    expect(total).toBe(TABLES.reduce((sum, table) => sum + before[table], 0));
    expect(await counts(first)).toEqual({ otp_codes: 0, otp_refresh_tokens: 0, otp_sessions: 0, otp_revocations: 0 });
  });
});

/** Many expired rows of every kind the cleanup removes, plus live ones, inserted through the store. */
async function seed(store: TypeOrmOtpAuthStore<TestUser>, now: number, n: number, live: boolean): Promise<void> {
  const past = now - 30 * DAY * 1000;
  const at = live ? now : past;
  const expires = live ? now + DAY * 1000 : past + 1000;
  const hash = (s: string) => createHash('sha256').update(s).digest('hex');
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const tag = `${live ? 'live' : 'old'}-${randomUUID()}-${i}`;
      const sessionId = randomUUID();
      await store.replaceCode(null, {
        email: `${tag}@example.com`,
        purpose: 'login',
        codeHash: hash(tag),
        expiresAt: expires,
        now: at,
      });
      await store.createSession(
        { id: sessionId, userId: '1', amr: ['otp'], createdAt: at, revokedAt: null },
        { tokenHash: hash(`t-${tag}`), sessionId, userId: '1', parentHash: null, createdAt: at, expiresAt: expires },
      );
      await store.addRevocation({ key: `jti:${tag}`, expiresAt: expires, createdAt: at });
      await store.createMfaChallenge({
        id: randomUUID(),
        userId: '1',
        amr: ['otp'],
        attempts: 0,
        expiresAt: expires,
        consumedAt: null,
      });
      // A used backup code is dead: the cleanup's statement that reads its own table.
      if (!live) {
        const id = randomUUID();
        await store.insertBackupCodes([
          { id, userId: `u-${i}`, batch: id, salt: hash(id), hash: hash(tag), usedAt: at },
        ]);
      }
    }),
  );
}

if (serverBackends().length === 0) {
  console.warn('concurrent cleanup on two instances: NOT TESTED (no PostgreSQL or MariaDB among the backends).');
}

for (const backend of serverBackends()) describeConcurrentCleanup(backend);

function describeConcurrentCleanup(backend: Backend): void {
  describe(`TypeORM cleanup run concurrently by two instances on ${backend}`, () => {
    it('never fails, removes each expired row once, and leaves live rows alone (while sign-ins write)', async () => {
      const database = await createTestDatabase(backend, [TestUser, ...otpAuthEntities]);
      // A second instance: its own connection pool on the same database.
      const other = new DataSource({
        type: backend === 'postgres' ? 'postgres' : 'mysql',
        url: database.url!,
        entities: [TestUser, ...otpAuthEntities],
        extra: backend === 'postgres' ? { max: 10 } : { connectionLimit: 10 },
      });
      await other.initialize();
      const a = new TypeOrmOtpAuthStore(database.dataSource, { userEntity: TestUser });
      const b = new TypeOrmOtpAuthStore(other, { userEntity: TestUser });
      try {
        const now = Date.now();
        const policy = { now, codeRetention: 3600_000 };
        for (let round = 0; round < 5; round += 1) {
          await seed(a, now, 40, false);
          const [ra, rb] = await Promise.all([a.cleanup(policy), b.cleanup(policy), seed(b, now, 10, true)]);
          // 40 expired rows of each kind, split between the two runs.
          expect(ra.codes + rb.codes).toBe(40);
          expect(ra.refreshTokens + rb.refreshTokens).toBe(40);
          expect(ra.revocations + rb.revocations).toBe(40);
          expect(ra.mfa + rb.mfa).toBe(80); // 40 expired challenges, 40 used backup codes
          // A session goes with its last token; a run that raced the other may leave some for the next.
          expect(ra.sessions + rb.sessions).toBeLessThanOrEqual(40);
        }
        await a.cleanup(policy);
        const left = async (table: string) =>
          Number(((await database.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`)) as { n: string }[])[0]!.n);
        expect(await left('otp_codes')).toBe(50);
        expect(await left('otp_refresh_tokens')).toBe(50);
        expect(await left('otp_sessions')).toBe(50);
        expect(await left('otp_revocations')).toBe(50);
        expect(await left('otp_mfa_challenges')).toBe(50);
        expect(await left('otp_backup_codes')).toBe(0);
      } finally {
        await other.destroy();
        await database.drop();
      }
    }, 120_000);
  });
}

const DIST = new URL('../libs/otp-auth/dist/index.js', import.meta.url).pathname;

describe('the cleanup timer and the process', () => {
  it('does not keep a process alive: an app that never closes still exits', async () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing; run \`npx tsc -b tsconfig.build.json\` first.`);
    // Plain ESM against the built package, so nothing of Jest's keeps the loop alive.
    const script = `
      import 'reflect-metadata';
      import { Module } from '@nestjs/common';
      import { NestFactory } from '@nestjs/core';
      import { DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
      import { OtpAuthModule, CleanupScheduler } from 'nestjs-otp-auth';
      import { OtpBaseUser, otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
      class User extends OtpBaseUser {}
      PrimaryGeneratedColumn()(User.prototype, 'id');
      Entity('users')(User);
      const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [User, ...otpAuthEntities], synchronize: true });
      await dataSource.initialize();
      class AppModule {}
      Module({ imports: [OtpAuthModule.forRoot({
        secret: 'cleanup-child-secret-0123456789abcdef0123',
        store: new TypeOrmOtpAuthStore(dataSource, { userEntity: User }),
        sendOtp: async () => {},
        cleanupInterval: 60,
        mountRoutes: false,
      })] })(AppModule);
      const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
      await app.init();
      console.log('scheduled=' + app.get(CleanupScheduler).scheduled);
      // No app.close(): only unref'd timers are left.
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const started = Date.now();
    const code = await new Promise<number | string>((resolve) => {
      // The first run is 30–60 s away: a referenced timer would hold the process that long.
      const kill = setTimeout(() => {
        child.kill();
        resolve('still running after 15 s');
      }, 15_000);
      child.on('exit', (exitCode) => {
        clearTimeout(kill);
        resolve(exitCode ?? 'killed');
      });
    });
    expect({ code, output: output.trim() }).toEqual({ code: 0, output: 'scheduled=true' });
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);
});
