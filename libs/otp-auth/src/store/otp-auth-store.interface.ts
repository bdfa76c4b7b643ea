/**
 * The persistence contract of the module. Every method that guards a security rule is a
 * single atomic operation in the database (a conditional UPDATE, or an INSERT that relies
 * on a unique key), so several app instances and parallel requests cannot break the rules.
 *
 * All times are epoch milliseconds, passed in by the caller (the store never reads a clock),
 * so every store behaves the same and tests can control time.
 */

import type { CodeStore } from './code-store.interface.js';
import type { SessionStore } from './session-store.interface.js';
import type { TotpStore } from './totp-store.interface.js';
import type { UserStore } from './user-store.interface.js';

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
 * Persistence for users, login codes, sessions, refresh tokens, revocations and TOTP state: the
 * intersection of the capability contracts (`UserStore`, `CodeStore`, `SessionStore`, `TotpStore`),
 * each in its own file, so a service can ask for only what it uses.
 * Implementations: `TypeOrmOtpAuthStore` (`nestjs-otp-auth/typeorm`) and `MongooseOtpAuthStore`
 * (`nestjs-otp-auth/mongoose`); every implementation must pass `describeStoreConformance`
 * (`nestjs-otp-auth/testing`).
 */
export interface OtpAuthStore<TEntity extends object = object>
  extends UserStore<TEntity>, CodeStore, SessionStore, TotpStore {
  /** Called once at startup; check the schema, prepare statements. */
  init?(): Promise<void>;
  /**
   * Whether an error thrown by this store means the database cannot be reached right now
   * (connection refused, reset or timed out; the server shutting down). The module then
   * answers 503 with `Retry-After` instead of 500. Node's socket errors are recognised
   * without it; implement it for the driver's own signs.
   */
  isUnavailableError?(error: unknown): boolean;

  /** Removes expired codes, tokens, sessions and revocations. */
  cleanup(policy: CleanupPolicy): Promise<CleanupReport>;
}
