import { OtpAuthConfigurationError } from '../errors.js';
import { integer, YEAR } from '../option-checks.js';
import type { ResolvedDeliveryOptions } from '../delivery/delivery.options.js';
import type { ResolvedRateLimits } from '../rate-limits/rate-limit.options.js';
import type { CodeStore } from '../store/code-store.interface.js';
import type { UserStore } from '../store/user-store.interface.js';
import { MAX_STATELESS_CODE_DIGITS } from './stateless-code.js';

/** Stateless code settings (`codeMode: 'stateless'`); durations in seconds. */
export interface StatelessCodeOptions {
  /** Length of a time window; a code is issued for the current one. Default 300. */
  window?: number;
  /** Earlier windows whose codes are still accepted (clock skew, slow mail). Default 1. */
  drift?: number;
  /**
   * Whether several instances serve sign-ins. Then startup refuses markers in memory (each
   * instance would accept a code once): use `RedisRateLimitStorage`. Default: true when
   * `revocationBroadcaster` is set (a sign of several instances), else false, which only logs a
   * warning when the markers are in memory.
   */
  multiInstance?: boolean;
}

/** The email-code options of `OtpAuthModuleOptions`; durations in seconds. */
export interface CodeOptions {
  /**
   * Testing mode: every code is all zeros and is returned by `request-otp`; short secrets are
   * accepted. The module refuses to start with it when `NODE_ENV=production`.
   */
  developerMode?: boolean;
  /** Digits per code, 4–10 (4–9 in stateless mode). Default 6. */
  otpLength?: number;
  /**
   * `stored` (default): each code is random and stored as a keyed hash. `stateless`: codes are
   * derived from the secret, the address and the time window (no code storage); used codes and
   * attempt counts live in the rate-limit storage, which must be Redis for several instances.
   * `otpTtl` does not apply in stateless mode: a code lives until its window plus `drift` ends.
   */
  codeMode?: 'stored' | 'stateless';
  /** Settings of `codeMode: 'stateless'`. */
  stateless?: StatelessCodeOptions;
  /** Code lifetime. Default 600 (10 min). */
  otpTtl?: number;
  /** Guesses allowed per code; after that even the right code fails. Default 5. */
  maxAttempts?: number;
  /** Minimum time between two codes for the same address. Default 60. */
  resendCooldown?: number;
  /**
   * Guesses allowed per address across codes within `window` seconds, so requesting new codes
   * does not buy new guesses. Default `{ max: 10, window: 3600 }`.
   */
  addressFailureLimit?: { max: number; window: number };
  /**
   * Wrong codes in a row for one address, across codes and windows, until a code is accepted
   * (NIST SP 800-63B 5.2.2 allows at most 100). After `backoffAfter` of them each further guess
   * must wait twice as long as the one before (1 s, 2 s, 4 s ... up to an hour); at `max` no code
   * is accepted for the address until `window` seconds after the streak began, and
   * `code.failure_limit_reached` is emitted so the app can tell the owner
   * (`OtpAuthService.resetFailureStreak` lifts it). Kept in the rate-limit storage, so several
   * instances need a shared one. Default `{ max: 100, backoffAfter: 10, window: 2_592_000 }` (30 days).
   */
  consecutiveFailures?: { max?: number; backoffAfter?: number; window?: number };
  /** Create users on their first successful sign-in. Default true. */
  autoCreateUser?: boolean;
}

/** Defaults of {@link CodeOptions}. */
export const CODE_DEFAULTS = {
  developerMode: false,
  otpLength: 6,
  otpTtl: 600,
  maxAttempts: 5,
  resendCooldown: 60,
  addressFailureLimit: { max: 10, window: 3600 },
  consecutiveFailures: { max: 100, backoffAfter: 10, window: 30 * 24 * 3600 },
  autoCreateUser: true,
} as const;

const STATELESS_KEYS = { window: true, drift: true, multiInstance: true } as const satisfies Record<
  keyof StatelessCodeOptions,
  true
>;

const CONSECUTIVE_FAILURES_KEYS = { max: true, backoffAfter: true, window: true } as const satisfies Record<
  keyof NonNullable<CodeOptions['consecutiveFailures']>,
  true
>;

const ADDRESS_FAILURE_LIMIT_KEYS = { max: true, window: true } as const satisfies Record<
  keyof NonNullable<CodeOptions['addressFailureLimit']>,
  true
>;

/** The keys of {@link CodeOptions} (checked at startup). */
export const CODE_OPTION_KEYS = {
  developerMode: true,
  otpLength: true,
  codeMode: true,
  stateless: STATELESS_KEYS,
  otpTtl: true,
  maxAttempts: true,
  resendCooldown: true,
  addressFailureLimit: ADDRESS_FAILURE_LIMIT_KEYS,
  consecutiveFailures: CONSECUTIVE_FAILURES_KEYS,
  autoCreateUser: true,
} as const satisfies Record<keyof CodeOptions, true | object>;

/** {@link CodeOptions} after defaults and validation. */
export interface ResolvedCodeOptions {
  readonly developerMode: boolean;
  readonly otpLength: number;
  readonly codeMode: 'stored' | 'stateless';
  readonly stateless: { readonly window: number; readonly drift: number; readonly multiInstance: boolean };
  readonly otpTtl: number;
  readonly maxAttempts: number;
  readonly resendCooldown: number;
  readonly addressFailureLimit: { readonly max: number; readonly window: number };
  readonly consecutiveFailures: { readonly max: number; readonly backoffAfter: number; readonly window: number };
  readonly autoCreateUser: boolean;
}

/** `stateless.multiInstance`: an explicit boolean wins; else a revocation broadcaster implies several instances. */
function resolveMultiInstance(value: boolean | undefined, broadcasting: boolean): boolean {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new OtpAuthConfigurationError(`\`stateless.multiInstance\` must be true or false (got ${String(value)}).`);
  }
  return value ?? broadcasting;
}

/**
 * Validates the email-code options and fills in {@link CODE_DEFAULTS}.
 *
 * @param options - The module's options (only the code options are read).
 * @param broadcasting - Whether a revocation broadcaster is set: a sign of several instances,
 *   the default of `stateless.multiInstance`.
 */
export function resolveCodeOptions(options: CodeOptions, broadcasting: boolean): ResolvedCodeOptions {
  const d = CODE_DEFAULTS;
  const limit = options.addressFailureLimit ?? d.addressFailureLimit;
  const streak = options.consecutiveFailures ?? {};
  if (streak === null || typeof streak !== 'object') {
    throw new OtpAuthConfigurationError(
      '`consecutiveFailures` must be an object with `max`, `backoffAfter`, `window`.',
    );
  }
  const codeMode = options.codeMode ?? 'stored';
  if (codeMode !== 'stored' && codeMode !== 'stateless') {
    throw new OtpAuthConfigurationError(`\`codeMode\` must be 'stored' or 'stateless' (got ${String(codeMode)}).`);
  }
  return {
    developerMode: options.developerMode ?? d.developerMode,
    otpLength: integer(
      'otpLength',
      options.otpLength,
      d.otpLength,
      4,
      codeMode === 'stateless' ? MAX_STATELESS_CODE_DIGITS : 10,
    ),
    codeMode,
    stateless: {
      window: integer('stateless.window', options.stateless?.window, 300, 30, 3600),
      drift: integer('stateless.drift', options.stateless?.drift, 1, 0, 5),
      multiInstance: resolveMultiInstance(options.stateless?.multiInstance, broadcasting),
    },
    otpTtl: integer('otpTtl', options.otpTtl, d.otpTtl, 1, 24 * 3600),
    maxAttempts: integer('maxAttempts', options.maxAttempts, d.maxAttempts, 1, 100),
    resendCooldown: integer('resendCooldown', options.resendCooldown, d.resendCooldown, 0, 24 * 3600),
    addressFailureLimit: {
      max: integer('addressFailureLimit.max', limit.max, d.addressFailureLimit.max, 1, 10_000),
      window: integer('addressFailureLimit.window', limit.window, d.addressFailureLimit.window, 1, YEAR),
    },
    consecutiveFailures: {
      max: integer('consecutiveFailures.max', streak.max, d.consecutiveFailures.max, 1, 100_000),
      backoffAfter: integer(
        'consecutiveFailures.backoffAfter',
        streak.backoffAfter,
        d.consecutiveFailures.backoffAfter,
        0,
        100_000,
      ),
      window: integer('consecutiveFailures.window', streak.window, d.consecutiveFailures.window, 60, YEAR),
    },
    autoCreateUser: options.autoCreateUser ?? d.autoCreateUser,
  };
}

/** What the email-code services read of the module's options. */
export interface CodeConfig extends ResolvedCodeOptions {
  readonly store: UserStore & CodeStore;
  /** Epoch milliseconds. */
  readonly clock: () => number;
  readonly delivery: Pick<ResolvedDeliveryOptions, 'mode'>;
  readonly rateLimits: Pick<ResolvedRateLimits, 'storage' | 'onStorageError'>;
}

/** DI token of {@link CodeConfig}. */
export const OTP_CODE_CONFIG = Symbol('OTP_CODE_CONFIG');
