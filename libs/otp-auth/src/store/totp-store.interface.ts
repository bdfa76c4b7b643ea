/**
 * Persistence of authenticator-app (TOTP) two-factor state. Part of every {@link OtpAuthStore};
 * each rule is one atomic statement, as for login codes.
 */

/** A user's TOTP enrolment: pending until confirmed with a valid code, then active. */
export interface TotpRecord {
  readonly userId: string;
  /** AES-256-GCM ciphertext of the base32 secret (never the secret itself). */
  readonly encryptedSecret: string;
  /** Which derived key encrypted it, so the module secret can be rotated. */
  readonly keyId: string;
  readonly active: boolean;
  /** The last accepted time step; codes for this step or earlier are replays. */
  readonly lastStep: number | null;
  /** Which set of backup codes is valid; older sets are dead. */
  readonly backupBatch: string | null;
  /** Guesses evaluated in the current window, across sessions and challenges. */
  readonly failureCount: number;
  readonly failureWindowStart: number | null;
  readonly createdAt: number;
  readonly confirmedAt: number | null;
}

/** One backup code, stored only as a salted keyed hash. */
export interface BackupCodeRecord {
  readonly id: string;
  readonly userId: string;
  readonly batch: string;
  readonly salt: string;
  readonly hash: string;
  readonly usedAt: number | null;
}

/** A pending second-factor step after a first factor (the `mfa_token`'s server-side state). */
export interface MfaChallengeRecord {
  /** The mfa token's `jti`. */
  readonly id: string;
  readonly userId: string;
  /** Authentication methods of the first factor, e.g. `['otp']`. */
  readonly amr: readonly string[];
  readonly attempts: number;
  readonly expiresAt: number;
  readonly consumedAt: number | null;
}

/** Limits of a user-wide failure window (see `AttemptLimits` for login codes). */
export interface TotpAttemptLimits {
  readonly maxFailures: number;
  readonly failureWindowCutoff: number;
  readonly now: number;
}

export interface TotpStore {
  findTotp(userId: string): Promise<TotpRecord | null>;
  /**
   * Stores a new pending enrolment, replacing an earlier pending one. Returns false (and changes
   * nothing) when the user already has TOTP active.
   */
  savePendingTotp(record: TotpRecord): Promise<boolean>;
  /**
   * Activates the pending enrolment whose ciphertext is `encryptedSecret` (compare-and-set), with
   * `lastStep` as the step of the confirming code and `backupBatch` as the valid backup set.
   */
  activateTotp(
    userId: string,
    encryptedSecret: string,
    lastStep: number,
    backupBatch: string,
    now: number,
  ): Promise<boolean>;
  /** Removes the enrolment (pending or active) and its backup codes. Returns whether one existed. */
  deleteTotp(userId: string): Promise<boolean>;
  /**
   * Accepts time step `step` if it is later than the last accepted one (replay protection), and
   * only while the active secret is still `encryptedSecret` (the one the code was checked against).
   * Accepting also forgets the user-wide failures, in the same statement (a success ends them).
   */
  acceptTotpStep(userId: string, step: number, encryptedSecret: string): Promise<boolean>;
  /** Reserves one guess in the user-wide failure window; false when the cap is reached. */
  reserveTotpAttempt(userId: string, limits: TotpAttemptLimits): Promise<boolean>;
  /** Forgets the user-wide failures after a success. */
  clearTotpFailures(userId: string): Promise<void>;

  /** Adds backup codes of a batch (valid once `activateTotp` / `setBackupBatch` made it current; insert after). */
  insertBackupCodes(codes: readonly BackupCodeRecord[]): Promise<void>;
  /** Makes `batch` the valid backup set of an active enrolment. */
  setBackupBatch(userId: string, batch: string): Promise<boolean>;
  /** Unused codes of the user's valid batch. */
  listUsableBackupCodes(userId: string): Promise<BackupCodeRecord[]>;
  /** Marks a backup code used, exactly once. */
  useBackupCode(id: string, now: number): Promise<boolean>;

  createMfaChallenge(challenge: MfaChallengeRecord): Promise<void>;
  findMfaChallenge(id: string): Promise<MfaChallengeRecord | null>;
  /** Reserves one guess on a live, unconsumed challenge under `maxAttempts`. */
  reserveMfaAttempt(id: string, maxAttempts: number, now: number): Promise<boolean>;
  /** Consumes a challenge exactly once. */
  consumeMfaChallenge(id: string, now: number): Promise<boolean>;
}
