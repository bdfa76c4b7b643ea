/**
 * The persistence contract of the module. Every method that guards a security rule is a
 * single atomic operation in the database (a conditional UPDATE, or an INSERT that relies
 * on a unique key), so several app instances and parallel requests cannot break the rules.
 *
 * All times are epoch milliseconds, passed in by the caller (the store never reads a clock),
 * so every store behaves the same and tests can control time.
 */

import type { TotpStore } from './totp-store.interface.js';

/** A user as the module sees it; `entity` is the application's own object (entity or document). */
export interface StoredUser<TEntity = object> {
  /** The user's primary key as a string, exactly as it appears in the `sub` claim. */
  readonly id: string;
  readonly email: string;
  readonly isVerified: boolean;
  readonly entity: TEntity;
  /**
   * Whether the user's TOTP enrolment is active, when the store read it in the same statement
   * as the user (the TypeORM store does for `findUserByEmail`); left out, the module reads it.
   */
  readonly totpActive?: boolean;
}

/** The state of one address's login code (one row per email and purpose). */
export interface CodeRecord {
  readonly email: string;
  readonly purpose: string;
  /** Keyed hash of the live code, or null once consumed. */
  readonly codeHash: string | null;
  /** Increases with every new code; used for compare-and-set. */
  readonly generation: number;
  readonly expiresAt: number;
  /** Guesses evaluated against the live code. */
  readonly attempts: number;
  /** When the live code was sent (start of the resend cooldown). */
  readonly sentAt: number;
  /** Guesses evaluated in the current address-wide window, across codes. */
  readonly failureCount: number;
  readonly failureWindowStart: number | null;
}

/** What a new code replaces; `previous` lets a failed delivery restore the exact prior state. */
export interface NewCode {
  readonly email: string;
  readonly purpose: string;
  readonly codeHash: string;
  readonly expiresAt: number;
  readonly now: number;
}

/** Limits applied atomically when a guess is about to be evaluated. */
export interface AttemptLimits {
  readonly maxAttempts: number;
  readonly maxFailures: number;
  /** Failures counted before this instant belong to an old window and are forgotten. */
  readonly failureWindowCutoff: number;
  readonly now: number;
}

export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  /** Authentication methods used to open the session (e.g. `otp`). */
  readonly amr: readonly string[];
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface RefreshTokenRecord {
  readonly tokenHash: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly parentHash: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** A refresh token together with the session it belongs to. */
export interface RefreshTokenWithSession {
  readonly token: RefreshTokenRecord;
  readonly session: SessionRecord;
}

/** An entry in the revocation list: `sid:<session id>` or `jti:<token id>`. */
export interface RevocationRecord {
  readonly key: string;
  /** After this instant no token the entry covers can be valid, so the entry can go. */
  readonly expiresAt: number;
  readonly createdAt: number;
}

/** How many rows `cleanup()` removed, per kind. */
export interface CleanupReport {
  readonly codes: number;
  readonly refreshTokens: number;
  readonly sessions: number;
  readonly revocations: number;
  /** Expired MFA challenges, and backup codes that are used or of a dead batch. */
  readonly mfa: number;
  readonly total: number;
}

/** Options `cleanup()` needs to know which rows can no longer matter. */
export interface CleanupPolicy {
  readonly now: number;
  /** Code rows still inside a cooldown or a failure window are kept. */
  readonly codeRetention: number;
}

/**
 * Persistence for users, login codes, sessions, refresh tokens, revocations and TOTP state.
 * Implementations: `TypeOrmOtpAuthStore` (`nestjs-otp-auth/typeorm`) and `MongooseOtpAuthStore`
 * (`nestjs-otp-auth/mongoose`); every implementation must pass `describeStoreConformance`
 * (`nestjs-otp-auth/testing`).
 */
export interface OtpAuthStore<TEntity extends object = object> extends TotpStore {
  /** Called once at startup; check the schema, prepare statements. */
  init?(): Promise<void>;
  /**
   * Whether an error thrown by this store means the database cannot be reached right now
   * (connection refused, reset or timed out; the server shutting down). The module then
   * answers 503 with `Retry-After` instead of 500. Node's socket errors are recognised
   * without it; implement it for the driver's own signs.
   */
  isUnavailableError?(error: unknown): boolean;

  findUserById(id: string): Promise<StoredUser<TEntity> | null>;
  /**
   * Optional: the user and whether their TOTP enrolment is active, read together (one statement
   * where the database allows it). The module falls back to `findUserById` and `findTotp`.
   */
  findUserWithSecondFactor?(id: string): Promise<{ user: StoredUser<TEntity>; totpActive: boolean } | null>;
  /** Exact match only, whatever the database's collation. */
  findUserByEmail(email: string): Promise<StoredUser<TEntity> | null>;
  /**
   * Returns the user with exactly this email, creating it if absent (unverified, or verified
   * with `options.verified`: a sign-in creates users it has just verified, in one insert); safe
   * under concurrency. An existing user is returned as it is. Null when the database's collation
   * treats a different existing address as equal.
   */
  createOrGetUser(email: string, options?: { verified?: boolean }): Promise<StoredUser<TEntity> | null>;
  /** Sets `isVerified`; returns the updated user, or null if it no longer exists. */
  markUserVerified(id: string): Promise<StoredUser<TEntity> | null>;

  findCode(email: string, purpose: string): Promise<CodeRecord | null>;
  /**
   * Replaces the live code if `expected` is still the current state (compare-and-set on
   * `generation`; null means "no row yet"). Resets per-code attempts, keeps the
   * address-wide failure window. Returns the new record, or null when another request won.
   */
  replaceCode(expected: CodeRecord | null, next: NewCode): Promise<CodeRecord | null>;
  /** Puts `previous` back if the code is still generation `generation` (undo of a failed delivery). */
  restoreCode(email: string, purpose: string, generation: number, previous: CodeRecord | null): Promise<void>;
  /**
   * Reserves one evaluation of a guess against code `generation`: increments both the
   * per-code and the address-wide counters in one statement, only if the code is live,
   * unexpired and under both limits. Returns whether the guess may be evaluated.
   */
  reserveAttempt(email: string, purpose: string, generation: number, limits: AttemptLimits): Promise<boolean>;
  /** Consumes code `generation` exactly once (advancing the generation) and clears the address-wide failures. */
  consumeCode(email: string, purpose: string, generation: number): Promise<boolean>;

  /**
   * Stores a session with its first refresh token, all or nothing as far as sessions go: a
   * failure part-way must never leave a session without its token (a transaction, or the token
   * written first, since a token whose session is missing is never found).
   */
  createSession(session: SessionRecord, firstToken: RefreshTokenRecord): Promise<void>;
  findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | null>;
  /**
   * Records `successor` as the one child of its parent. Exactly one caller per parent gets
   * true (the insert relies on the unique token hash); the others get false.
   */
  insertSuccessor(successor: RefreshTokenRecord): Promise<boolean>;
  /** Revokes a session and lists it for access-token revocation; true if it was live. */
  revokeSession(sessionId: string, now: number, revocation: RevocationRecord): Promise<boolean>;
  /** Sessions of a user not yet revoked (for logout-all). */
  listActiveSessionIds(userId: string): Promise<string[]>;
  /** Adds an entry to the revocation list (idempotent). */
  addRevocation(revocation: RevocationRecord): Promise<void>;
  /** Unexpired revocations created at or after `since`. */
  listRevocations(since: number, now: number): Promise<RevocationRecord[]>;

  /** Removes expired codes, tokens, sessions and revocations. */
  cleanup(policy: CleanupPolicy): Promise<CleanupReport>;
}
