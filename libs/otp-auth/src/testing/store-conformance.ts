import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { BackupCodeRecord, MfaChallengeRecord, TotpRecord } from '../store/totp-store.interface.js';
import { type CodeRecord } from '../store/code-store.interface.js';

/** Another user model of the same store kind, for id round-trips (e.g. uuid keys next to integers). */
export interface ConformanceIdVariant {
  readonly label: string;
  readonly store: OtpAuthStore;
  /** What this variant's ids look like, e.g. `/^[0-9a-f-]{36}$/`. */
  readonly idPattern: RegExp;
  /** Strings that are not ids of this variant; lookups must answer null, never throw. */
  readonly foreignIds: readonly string[];
}

/** What {@link describeStoreConformance} needs: a fresh, empty store and how to dispose of it. */
export interface StoreConformanceHarness {
  /** A store over empty collections/tables; `init()` is called by the suite. */
  readonly store: OtpAuthStore;
  /** What user ids of this store look like (e.g. `/^\d+$/`, `/^[0-9a-f]{24}$/`). */
  readonly idPattern: RegExp;
  /** Strings that are not ids of this store; lookups must answer null, never throw. */
  readonly invalidIds: readonly string[];
  /** More user models on the same backend whose id round-trips must hold too. */
  readonly idVariants?: readonly ConformanceIdVariant[];
  /** Drops what the harness created. */
  close(): Promise<void>;
}

const HOUR = 3600_000;

/**
 * The behaviour every {@link OtpAuthStore} must have, as one Jest suite: every operation, expiry,
 * cleanup, the concurrency invariants (50+ parallel calls: never more guesses than the limit,
 * exactly one winner for consumption, rotation and single-use codes) and id round-trips. The
 * module's SQL and MongoDB stores run it; run it against your own store in a Jest spec:
 *
 * ```ts
 * import { describeStoreConformance } from 'nestjs-otp-auth/testing';
 * describeStoreConformance('MyStore', async () => ({ store: new MyStore(...), idPattern: /^\d+$/, invalidIds: ['abc'], close: async () => {} }));
 * ```
 */
export function describeStoreConformance(name: string, createHarness: () => Promise<StoreConformanceHarness>): void {
  describe(`${name}: store conformance`, () => {
    let harness: StoreConformanceHarness;
    let store: OtpAuthStore;
    beforeAll(async () => {
      harness = await createHarness();
      store = harness.store;
      await store.init?.();
    }, 60_000);
    afterAll(async () => {
      await harness?.close();
    });

    describe('users', () => {
      it('creates unverified users, finds them by email and by string id, and keeps extra columns', async () => {
        const created = (await store.createOrGetUser('new@example.com'))!;
        expect(created).toMatchObject({ email: 'new@example.com', isVerified: false });
        expect(typeof created.id).toBe('string');
        expect(created.id).toMatch(harness.idPattern);
        expect(created.entity).toEqual(expect.any(Object));
        expect((await store.findUserById(created.id))?.email).toBe('new@example.com');
        expect((await store.findUserByEmail('new@example.com'))?.id).toBe(created.id);
        expect((await store.createOrGetUser('new@example.com'))?.id).toBe(created.id);
      });

      it('returns null, never throws, for absent or ill-typed ids', async () => {
        for (const id of [...harness.invalidIds, '', "1' OR '1'='1", '{"$ne":null}', '9'.repeat(40)]) {
          expect(await store.findUserById(id)).toBeNull();
          expect(await store.markUserVerified(id)).toBeNull();
        }
        expect(await store.findUserByEmail('absent@example.com')).toBeNull();
      });

      it('creates a user exactly once under 50 parallel calls', async () => {
        const users = await Promise.all(Array.from({ length: 50 }, () => store.createOrGetUser('par@example.com')));
        expect(new Set(users.map((u) => u!.id)).size).toBe(1);
      });

      it('never returns a different address that the collation deems equal (MySQL is accent-insensitive)', async () => {
        const victim = (await store.createOrGetUser('victim@example.com'))!;
        expect(await store.findUserByEmail('victim@exämple.com')).toBeNull();
        expect(await store.findUserByEmail('VICTIM@example.com')).toBeNull();
        const other = await store.createOrGetUser('victim@exämple.com');
        expect(other?.id).not.toBe(victim.id);
        if (other) expect(other.email).toBe('victim@exämple.com');
      });

      it('creates a user verified when asked, and returns an existing user as it is', async () => {
        const created = (await store.createOrGetUser('born-verified@example.com', { verified: true }))!;
        expect(created).toMatchObject({ email: 'born-verified@example.com', isVerified: true });
        expect((await store.findUserById(created.id))?.isVerified).toBe(true);
        // An existing unverified user (e.g. invited) is not verified by a create call.
        await store.createOrGetUser('invited@example.com');
        expect((await store.createOrGetUser('invited@example.com', { verified: true }))?.isVerified).toBe(false);
      });

      it('marks a user verified', async () => {
        const user = (await store.createOrGetUser('verify@example.com'))!;
        expect((await store.markUserVerified(user.id))?.isVerified).toBe(true);
        expect((await store.findUserById(user.id))?.isVerified).toBe(true);
      });

      it('round-trips the ids of every user model as strings', async () => {
        for (const variant of harness.idVariants ?? []) {
          await variant.store.init?.();
          const user = (await variant.store.createOrGetUser(`variant@example.com`))!;
          expect(user.id).toMatch(variant.idPattern);
          expect((await variant.store.findUserById(String(user.id)))?.email).toBe('variant@example.com');
          for (const id of variant.foreignIds) expect(await variant.store.findUserById(id)).toBeNull();
        }
      });
    });

    describe('codes', () => {
      const now = Date.now();
      const next = (email: string, hash = 'h1') => ({
        email,
        purpose: 'login',
        codeHash: hash,
        expiresAt: now + 600_000,
        now,
      });
      const limits = { maxAttempts: 3, maxFailures: 10, failureWindowCutoff: now - HOUR, now };

      it('saves a code with zero attempts and a send time; replaces it only by compare-and-set', async () => {
        const first = await store.replaceCode(null, next('c1@example.com'));
        expect(first).toMatchObject({ generation: 1, attempts: 0, sentAt: now, codeHash: 'h1' });
        expect(await store.replaceCode(null, next('c1@example.com'))).toBeNull();
        const second = await store.replaceCode(first, next('c1@example.com', 'h2'));
        expect(second).toMatchObject({ generation: 2, codeHash: 'h2' });
        expect(await store.replaceCode(first, next('c1@example.com', 'h3'))).toBeNull();
        expect((await store.findCode('c1@example.com', 'login'))?.codeHash).toBe('h2');
      });

      it('counts attempts 1..n and stops at the limit; consumes exactly once', async () => {
        const code = (await store.replaceCode(null, next('c2@example.com')))!;
        for (let i = 1; i <= 3; i++) {
          expect(await store.reserveAttempt('c2@example.com', 'login', code.generation, limits)).toBe(true);
          expect((await store.findCode('c2@example.com', 'login'))?.attempts).toBe(i);
        }
        expect(await store.reserveAttempt('c2@example.com', 'login', code.generation, limits)).toBe(false);
        expect(await store.consumeCode('c2@example.com', 'login', code.generation)).toBe(true);
        expect(await store.consumeCode('c2@example.com', 'login', code.generation)).toBe(false);
        const consumed = await store.findCode('c2@example.com', 'login');
        expect(consumed).toMatchObject({ codeHash: null, failureCount: 0 });
      });

      it('60 parallel guesses reserve exactly maxAttempts; 50 parallel consumptions have one winner', async () => {
        const code = (await store.replaceCode(null, next('race@example.com')))!;
        const reserved = await Promise.all(
          Array.from({ length: 60 }, () =>
            store.reserveAttempt('race@example.com', 'login', code.generation, { ...limits, maxAttempts: 5 }),
          ),
        );
        expect(reserved.filter(Boolean)).toHaveLength(5);
        expect((await store.findCode('race@example.com', 'login'))?.attempts).toBe(5);
        const consumed = await Promise.all(
          Array.from({ length: 50 }, () => store.consumeCode('race@example.com', 'login', code.generation)),
        );
        expect(consumed.filter(Boolean)).toHaveLength(1);
      });

      it('refuses attempts on expired codes and on stale generations', async () => {
        const code = (await store.replaceCode(null, { ...next('c3@example.com'), expiresAt: now - 1 }))!;
        expect(await store.reserveAttempt('c3@example.com', 'login', code.generation, limits)).toBe(false);
        const fresh = (await store.replaceCode(code, next('c3@example.com')))!;
        expect(await store.reserveAttempt('c3@example.com', 'login', code.generation, limits)).toBe(false);
        expect(await store.reserveAttempt('c3@example.com', 'login', fresh.generation, limits)).toBe(true);
      });

      it('keeps the address-wide failure count across codes, and starts a new window after the cutoff', async () => {
        const email = 'c4@example.com';
        const long = { ...next(email), expiresAt: now + 3 * HOUR };
        let code: CodeRecord = (await store.replaceCode(null, long))!;
        const tight = { ...limits, maxAttempts: 100, maxFailures: 4 };
        for (let i = 0; i < 2; i++)
          expect(await store.reserveAttempt(email, 'login', code.generation, tight)).toBe(true);
        code = (await store.replaceCode(code, long))!;
        expect(code.attempts).toBe(0);
        for (let i = 0; i < 2; i++)
          expect(await store.reserveAttempt(email, 'login', code.generation, tight)).toBe(true);
        expect(await store.reserveAttempt(email, 'login', code.generation, tight)).toBe(false);
        const later = { ...tight, now: now + 2 * HOUR, failureWindowCutoff: now + HOUR };
        expect(await store.reserveAttempt(email, 'login', code.generation, later)).toBe(true);
        expect((await store.findCode(email, 'login'))?.failureCount).toBe(1);
      });

      it('keeps the codes of addresses that differ only by accent or case apart', async () => {
        await store.replaceCode(null, next('twin@example.com', 'plain'));
        expect(await store.findCode('twin@exämple.com', 'login')).toBeNull();
        await store.replaceCode(null, next('twin@exämple.com', 'accent'));
        expect((await store.findCode('twin@example.com', 'login'))?.codeHash).toBe('plain');
        expect((await store.findCode('twin@exämple.com', 'login'))?.codeHash).toBe('accent');
        await store.restoreCode('twin@exämple.com', 'login', 1, null);
        await store.restoreCode('twin@example.com', 'login', 1, null);
      });

      it('a consumed code can never be restored by a delivery undo', async () => {
        const email = 'undo@example.com';
        const snapshot = (await store.replaceCode(null, next(email)))!;
        expect(await store.consumeCode(email, 'login', snapshot.generation)).toBe(true);
        // A request that read the live code before it was consumed loses its compare-and-set.
        expect(await store.replaceCode(snapshot, next(email, 'h2'))).toBeNull();
        // ...so it never reaches the undo, and an undo keyed to the old generation changes nothing.
        await store.restoreCode(email, 'login', snapshot.generation, snapshot);
        expect(await store.findCode(email, 'login')).toMatchObject({
          codeHash: null,
          generation: snapshot.generation + 1,
        });
        await store.restoreCode(email, 'login', snapshot.generation + 1, null);
      });

      it('restores the previous state after a failed delivery', async () => {
        const first = (await store.replaceCode(null, next('c5@example.com')))!;
        const second = (await store.replaceCode(first, { ...next('c5@example.com', 'h2'), now: now + 61_000 }))!;
        await store.restoreCode('c5@example.com', 'login', second.generation, first);
        expect(await store.findCode('c5@example.com', 'login')).toMatchObject({
          codeHash: 'h1',
          sentAt: now,
          generation: 1,
        });
        const lone = (await store.replaceCode(null, next('c6@example.com')))!;
        await store.restoreCode('c6@example.com', 'login', lone.generation, null);
        expect(await store.findCode('c6@example.com', 'login')).toBeNull();
      });
    });

    describe('sessions, refresh tokens, revocations and cleanup', () => {
      const now = Date.now();
      const token = (hash: string, sessionId: string, expiresAt = now + HOUR, parentHash: string | null = null) => ({
        tokenHash: hash,
        sessionId,
        userId: '1',
        parentHash,
        createdAt: now,
        expiresAt,
      });
      const session = (id: string, createdAt = now) => ({ id, userId: '1', amr: ['otp'], createdAt, revokedAt: null });

      it('creates a session with its first token and finds it by hash', async () => {
        await store.createSession(
          session('00000000-0000-4000-8000-000000000001'),
          token('t1', '00000000-0000-4000-8000-000000000001'),
        );
        const found = await store.findRefreshToken('t1');
        expect(found?.session).toMatchObject({
          id: '00000000-0000-4000-8000-000000000001',
          amr: ['otp'],
          revokedAt: null,
        });
        expect(found?.token).toMatchObject({ tokenHash: 't1', userId: '1', parentHash: null });
        expect(await store.findRefreshToken('absent')).toBeNull();
      });

      it('inserts a successor exactly once under 50 parallel rotations', async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, () =>
            store.insertSuccessor(token('t1-next', '00000000-0000-4000-8000-000000000001', now + HOUR, 't1')),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('revokes a session once, lists the revocation, and lists active sessions per user', async () => {
        const sid = '00000000-0000-4000-8000-000000000002';
        await store.createSession(session(sid), token('t2', sid));
        expect(await store.listActiveSessionIds('1')).toEqual(expect.arrayContaining([sid]));
        const entry = { key: `sid:${sid}`, expiresAt: now + HOUR, createdAt: now };
        expect(await store.revokeSession(sid, now, entry)).toBe(true);
        expect(await store.revokeSession(sid, now, entry)).toBe(false);
        expect((await store.findRefreshToken('t2'))?.session.revokedAt).toBe(now);
        expect(await store.listActiveSessionIds('1')).not.toContain(sid);
        const listed = await store.listRevocations(now - 1000, now);
        expect(listed).toEqual(expect.arrayContaining([entry]));
        expect(await store.listRevocations(now + 1, now)).not.toEqual(expect.arrayContaining([entry]));
      });

      it('keeps independent revocations apart and ignores duplicates', async () => {
        await store.addRevocation({ key: 'jti:a', expiresAt: now + 1000, createdAt: now });
        await store.addRevocation({ key: 'jti:a', expiresAt: now + 1000, createdAt: now });
        await store.addRevocation({ key: 'jti:b', expiresAt: now + 1000, createdAt: now });
        const keys = (await store.listRevocations(now, now)).map((r) => r.key);
        expect(keys.filter((k) => k === 'jti:a')).toHaveLength(1);
        expect(keys).toContain('jti:b');
      });

      it('cleanup removes only expired rows and reports the counts (0 when none)', async () => {
        const later = now + 10 * 24 * HOUR;
        const sid = '00000000-0000-4000-8000-000000000003';
        await store.createSession(session(sid), token('t3', sid, now + 20 * 24 * HOUR));
        const report = await store.cleanup({ now: later, codeRetention: HOUR });
        expect(report.refreshTokens).toBe(3); // t1, t1-next, t2
        expect(report.sessions).toBe(2);
        expect(report.revocations).toBeGreaterThanOrEqual(3);
        expect(report.codes).toBe(6); // c1..c5 and race (c6, the twins and undo were removed)
        expect(report.total).toBe(
          report.codes + report.refreshTokens + report.sessions + report.revocations + report.mfa,
        );
        expect(await store.findRefreshToken('t3')).not.toBeNull();
        expect(await store.cleanup({ now: later, codeRetention: HOUR })).toEqual({
          codes: 0,
          refreshTokens: 0,
          sessions: 0,
          revocations: 0,
          mfa: 0,
          total: 0,
        });
      });

      it('returns the times of a token and of its session exactly (sessionMaxAge and sessionIdleTimeout rely on them)', async () => {
        const sid = '00000000-0000-4000-8000-000000000004';
        const signedIn = now - 123_457; // odd milliseconds, distinct from the tokens' times
        const far = now + 40 * 24 * HOUR; // outlives the cleanup above, whatever the order
        await store.createSession(session(sid, signedIn), { ...token('t4', sid, far), createdAt: signedIn });
        expect(await store.insertSuccessor({ ...token('t4-next', sid, far - 1, 't4'), createdAt: now + 1 })).toBe(true);
        const first = await store.findRefreshToken('t4');
        const next = await store.findRefreshToken('t4-next');
        expect(first?.session.createdAt).toBe(signedIn);
        expect(first?.token).toMatchObject({ createdAt: signedIn, expiresAt: far });
        expect(next?.session.createdAt).toBe(signedIn);
        expect(next?.token).toMatchObject({ createdAt: now + 1, expiresAt: far - 1, parentHash: 't4' });
      });
    });

    describe('TOTP state', () => {
      const now = Date.now();
      const STEP = Math.floor(now / 30_000);
      const limits = { maxFailures: 3, failureWindowCutoff: now - HOUR, now };
      const pending = (userId: string, encryptedSecret = 'enc-1', extra: Partial<TotpRecord> = {}): TotpRecord => ({
        userId,
        encryptedSecret,
        keyId: 'k1',
        active: false,
        lastStep: null,
        backupBatch: null,
        failureCount: 0,
        failureWindowStart: null,
        createdAt: now,
        confirmedAt: null,
        ...extra,
      });
      /** An active enrolment with `batch` as its (empty until codes are inserted) backup set. */
      const enrol = async (userId: string, batch: string): Promise<void> => {
        expect(await store.savePendingTotp(pending(userId, `enc-${userId}`))).toBe(true);
        expect(await store.activateTotp(userId, `enc-${userId}`, STEP, batch, now)).toBe(true);
      };
      const codes = (userId: string, batch: string, n: number): BackupCodeRecord[] =>
        Array.from({ length: n }, (_, i) => ({
          id: `${batch}-${String(i).padStart(2, '0')}`,
          userId,
          batch,
          salt: `salt-${i}`,
          hash: `hash-${batch}-${i}`,
          usedAt: null,
        }));
      const challenge = (id: string, extra: Partial<MfaChallengeRecord> = {}): MfaChallengeRecord => ({
        id,
        userId: 'mfa-user',
        amr: ['otp'],
        attempts: 0,
        expiresAt: now + 300_000,
        consumedAt: null,
        ...extra,
      });
      const parallel = async (n: number, call: () => Promise<boolean>): Promise<number> =>
        (await Promise.all(Array.from({ length: n }, call))).filter(Boolean).length;

      it('saves a pending enrolment, replaces it while pending, and refuses once active', async () => {
        expect(await store.findTotp('totp-1')).toBeNull();
        expect(await store.savePendingTotp(pending('totp-1'))).toBe(true);
        expect(await store.findTotp('totp-1')).toEqual(pending('totp-1'));
        expect(await store.findTotp('TOTP-1')).toBeNull();
        const replacement = pending('totp-1', 'enc-2', { keyId: 'k2', createdAt: now + 1000 });
        expect(await store.savePendingTotp(replacement)).toBe(true);
        expect(await store.savePendingTotp(replacement)).toBe(true); // unchanged values still count
        expect(await store.findTotp('totp-1')).toEqual(replacement);
        expect(await store.activateTotp('totp-1', 'enc-2', STEP, 'batch-1', now)).toBe(true);
        expect(await store.savePendingTotp(pending('totp-1', 'enc-3'))).toBe(false);
        expect(await store.findTotp('totp-1')).toEqual({
          ...replacement,
          active: true,
          lastStep: STEP,
          backupBatch: 'batch-1',
          confirmedAt: now,
        });
        // A record claiming to be active is still stored as pending.
        expect(await store.savePendingTotp(pending('totp-1b', 'enc', { active: true }))).toBe(true);
        expect((await store.findTotp('totp-1b'))?.active).toBe(false);
      });

      it('activates only the pending enrolment with the expected ciphertext, exactly once', async () => {
        expect(await store.activateTotp('totp-absent', 'enc', STEP, 'b', now)).toBe(false);
        expect(await store.savePendingTotp(pending('totp-2', 'enc-a'))).toBe(true);
        expect(await store.reserveTotpAttempt('totp-2', limits)).toBe(true);
        expect(await store.activateTotp('totp-2', 'enc-b', STEP, 'b', now)).toBe(false);
        expect(await store.savePendingTotp(pending('totp-2', 'enc-b'))).toBe(true);
        expect(await store.activateTotp('totp-2', 'enc-a', STEP, 'b', now)).toBe(false); // replaced meanwhile
        expect((await store.findTotp('totp-2'))?.active).toBe(false);
        expect(await store.activateTotp('totp-2', 'enc-b', STEP, 'b', now + 5)).toBe(true);
        expect(await store.findTotp('totp-2')).toMatchObject({
          active: true,
          lastStep: STEP,
          backupBatch: 'b',
          confirmedAt: now + 5,
          failureCount: 0,
          failureWindowStart: null,
        });
        expect(await store.activateTotp('totp-2', 'enc-b', STEP + 1, 'c', now)).toBe(false);
        expect(await store.savePendingTotp(pending('totp-3', 'enc-p'))).toBe(true);
        expect(await parallel(50, () => store.activateTotp('totp-3', 'enc-p', STEP, 'b', now))).toBe(1);
      });

      it('accepts only later time steps, exactly once under 50 parallel calls', async () => {
        expect(await store.savePendingTotp(pending('totp-4', 'enc-4'))).toBe(true);
        expect(await store.acceptTotpStep('totp-4', STEP, 'enc-4')).toBe(false); // not active yet
        expect(await store.activateTotp('totp-4', 'enc-4', STEP, 'b', now)).toBe(true);
        expect(await store.acceptTotpStep('totp-4', STEP, 'enc-4')).toBe(false); // the confirming code's step
        expect(await store.acceptTotpStep('totp-4', STEP - 1, 'enc-4')).toBe(false);
        expect(await store.reserveTotpAttempt('totp-4', limits)).toBe(true);
        expect(await store.acceptTotpStep('totp-4', STEP + 1, 'enc-4')).toBe(true);
        // Accepting forgets the failures, in the same statement.
        expect(await store.findTotp('totp-4')).toMatchObject({ failureCount: 0, failureWindowStart: null });
        expect(await store.acceptTotpStep('totp-4', STEP + 1, 'enc-4')).toBe(false);
        expect(await parallel(50, () => store.acceptTotpStep('totp-4', STEP + 2, 'enc-4'))).toBe(1);
        expect((await store.findTotp('totp-4'))?.lastStep).toBe(STEP + 2);
        expect(await store.acceptTotpStep('totp-absent', STEP + 3, 'enc-4')).toBe(false);
        // A code checked against another secret (disabled and re-enrolled meanwhile) is refused.
        expect(await store.acceptTotpStep('totp-4', STEP + 5, 'enc-other')).toBe(false);
      });

      it('caps the user-wide failure window, starts a new one after the cutoff, and clears it', async () => {
        expect(await store.reserveTotpAttempt('totp-absent', limits)).toBe(false);
        expect(await store.savePendingTotp(pending('totp-5', 'enc-5'))).toBe(true);
        for (let i = 0; i < 3; i++) expect(await store.reserveTotpAttempt('totp-5', limits)).toBe(true);
        expect(await store.reserveTotpAttempt('totp-5', limits)).toBe(false);
        expect(await store.findTotp('totp-5')).toMatchObject({ failureCount: 3, failureWindowStart: now });
        // Restarting the enrolment does not reset the window.
        expect(await store.savePendingTotp(pending('totp-5', 'enc-5b'))).toBe(true);
        expect(await store.reserveTotpAttempt('totp-5', limits)).toBe(false);
        const later = { ...limits, now: now + 2 * HOUR, failureWindowCutoff: now + HOUR };
        expect(await store.reserveTotpAttempt('totp-5', later)).toBe(true);
        expect(await store.findTotp('totp-5')).toMatchObject({ failureCount: 1, failureWindowStart: now + 2 * HOUR });
        await store.clearTotpFailures('totp-5');
        expect(await store.findTotp('totp-5')).toMatchObject({ failureCount: 0, failureWindowStart: null });
        const five = { ...limits, maxFailures: 5 };
        expect(await parallel(50, () => store.reserveTotpAttempt('totp-5', five))).toBe(5);
        expect((await store.findTotp('totp-5'))?.failureCount).toBe(5);
      });

      it('keeps only the current batch usable, and uses each code once under 50 parallel calls', async () => {
        await enrol('totp-6', 'b6-1');
        const first = codes('totp-6', 'b6-1', 3);
        const second = codes('totp-6', 'b6-2', 2);
        await store.insertBackupCodes([]);
        await store.insertBackupCodes(first);
        await store.insertBackupCodes(second);
        await store.insertBackupCodes(codes('totp-7', 'b7-1', 2));
        expect(await store.listUsableBackupCodes('totp-6')).toEqual(first);
        expect(await store.useBackupCode(first[0]!.id, now)).toBe(true);
        expect(await store.useBackupCode(first[0]!.id, now)).toBe(false);
        expect(await store.listUsableBackupCodes('totp-6')).toEqual(first.slice(1));
        expect(await store.setBackupBatch('totp-6', 'b6-2')).toBe(true);
        expect(await store.listUsableBackupCodes('totp-6')).toEqual(second);
        expect(await store.useBackupCode(first[1]!.id, now)).toBe(false); // its batch is dead
        expect(await parallel(50, () => store.useBackupCode(second[0]!.id, now + 1))).toBe(1);
        expect(await store.listUsableBackupCodes('totp-6')).toEqual(second.slice(1));
        // A batch is valid only on an active enrolment.
        expect(await store.savePendingTotp(pending('totp-7', 'enc-7', { backupBatch: 'b7-1' }))).toBe(true);
        expect(await store.listUsableBackupCodes('totp-7')).toEqual([]);
        expect(await store.useBackupCode('b7-1-00', now)).toBe(false);
        expect(await store.setBackupBatch('totp-7', 'b7-1')).toBe(false);
        expect(await store.setBackupBatch('totp-absent', 'b7-1')).toBe(false);
        expect(await store.listUsableBackupCodes('totp-absent')).toEqual([]);
      });

      it('deletes an enrolment (active or pending) together with its backup codes', async () => {
        expect(await store.listUsableBackupCodes('totp-6')).toHaveLength(1); // what the batch test left usable
        expect(await store.deleteTotp('totp-6')).toBe(true);
        expect(await store.findTotp('totp-6')).toBeNull();
        expect(await store.listUsableBackupCodes('totp-6')).toEqual([]);
        expect(await store.useBackupCode('b6-2-01', now)).toBe(false);
        expect(await store.deleteTotp('totp-6')).toBe(false);
        expect(await store.deleteTotp('totp-7')).toBe(true);
        expect(await store.listUsableBackupCodes('totp-7')).toEqual([]);
        expect(await store.savePendingTotp(pending('totp-6', 'enc-again'))).toBe(true);
        expect(await store.deleteTotp('totp-6')).toBe(true);
      });

      it('reserves MFA attempts up to the limit on live challenges, and consumes each exactly once', async () => {
        await store.createMfaChallenge(challenge('mfa-1'));
        await store.createMfaChallenge(challenge('mfa-none', { amr: [] }));
        await store.createMfaChallenge(challenge('mfa-two', { amr: ['otp', 'pwd'] }));
        expect(await store.findMfaChallenge('mfa-1')).toEqual(challenge('mfa-1'));
        expect((await store.findMfaChallenge('mfa-none'))?.amr).toEqual([]);
        expect((await store.findMfaChallenge('mfa-two'))?.amr).toEqual(['otp', 'pwd']);
        expect(await store.findMfaChallenge('MFA-1')).toBeNull();
        expect(await store.findMfaChallenge('mfa-absent')).toBeNull();
        for (let i = 0; i < 3; i++) expect(await store.reserveMfaAttempt('mfa-1', 3, now)).toBe(true);
        expect(await store.reserveMfaAttempt('mfa-1', 3, now)).toBe(false);
        expect((await store.findMfaChallenge('mfa-1'))?.attempts).toBe(3);
        expect(await parallel(50, () => store.reserveMfaAttempt('mfa-two', 5, now))).toBe(5);
        expect(await store.reserveMfaAttempt('mfa-absent', 3, now)).toBe(false);

        await store.createMfaChallenge(challenge('mfa-short', { expiresAt: now + 1000 }));
        expect(await store.reserveMfaAttempt('mfa-short', 3, now + 1000)).toBe(false);
        expect(await store.consumeMfaChallenge('mfa-short', now + 1000)).toBe(false);
        expect(await store.reserveMfaAttempt('mfa-short', 3, now + 999)).toBe(true);

        expect(await parallel(50, () => store.consumeMfaChallenge('mfa-none', now))).toBe(1);
        expect((await store.findMfaChallenge('mfa-none'))?.consumedAt).toBe(now);
        expect(await store.reserveMfaAttempt('mfa-none', 3, now)).toBe(false);
        expect(await store.consumeMfaChallenge('mfa-absent', now)).toBe(false);
      });

      it('cleanup removes expired challenges and used or dead backup codes, counted as mfa', async () => {
        const at = now + 2000;
        await store.cleanup({ now: at, codeRetention: HOUR }); // what earlier tests left behind
        await store.createMfaChallenge(challenge('mfa-c-expired', { expiresAt: at }));
        await store.createMfaChallenge(challenge('mfa-c-live', { expiresAt: at + 1 }));
        await store.createMfaChallenge(challenge('mfa-c-consumed', { expiresAt: at + 1, consumedAt: now }));
        await enrol('totp-c', 'bc-2');
        const live = codes('totp-c', 'bc-2', 3);
        await store.insertBackupCodes([...codes('totp-c', 'bc-1', 2), ...live]);
        expect(await store.useBackupCode(live[0]!.id, now)).toBe(true);
        await store.insertBackupCodes(codes('totp-orphan', 'bo-1', 1));

        const report = await store.cleanup({ now: at, codeRetention: HOUR });
        expect(report.mfa).toBe(5); // 1 expired challenge, 2 codes of a dead batch, 1 used, 1 orphan
        expect(report.total).toBe(
          report.codes + report.refreshTokens + report.sessions + report.revocations + report.mfa,
        );
        expect(await store.findMfaChallenge('mfa-c-expired')).toBeNull();
        expect(await store.findMfaChallenge('mfa-c-live')).not.toBeNull();
        expect(await store.findMfaChallenge('mfa-c-consumed')).not.toBeNull();
        expect(await store.listUsableBackupCodes('totp-c')).toEqual(live.slice(1));
        expect((await store.cleanup({ now: at, codeRetention: HOUR })).mfa).toBe(0);
      });
    });
  });
}
