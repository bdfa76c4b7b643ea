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

/** Login codes: one live code per (address, purpose), every rule enforced by one atomic statement. */
export interface CodeStore {
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
}
