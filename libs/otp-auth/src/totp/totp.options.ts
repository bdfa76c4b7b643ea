import { OtpAuthConfigurationError } from '../errors.js';
import { integer, nonEmpty, YEAR } from '../option-checks.js';
import type { TotpStore } from '../store/totp-store.interface.js';
import type { UserStore } from '../store/user-store.interface.js';
import { TOKEN_DEFAULTS } from '../tokens/token.options.js';

/** Authenticator-app (TOTP) two-factor settings; durations in seconds. */
export interface TotpOptions {
  /** Shown in authenticator apps and used in the key URI; may not contain `:`. Default `nestjs-otp-auth`. */
  issuer?: string;
  /** Time steps accepted either side of the current one (RFC 6238 §5.2). Default 1 (±30 s). */
  window?: number;
  /** HMAC of the codes. Default `SHA1`, the only one every authenticator app supports. */
  algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
  /** Digits per code, 6 or 8. Default 6. */
  digits?: 6 | 8;
  /** Seconds per step. Default 30. */
  period?: number;
  /** Second-factor guesses per user across sessions and challenges within `failureWindow`. Default 10. */
  maxFailures?: number;
  /** Default 900 (15 min). */
  failureWindow?: number;
  /** Lifetime of an `mfa_token`. Default 300. */
  mfaTokenTtl?: number;
  /** Guesses per `mfa_token`. Default 5. */
  mfaMaxAttempts?: number;
  /** Backup codes per set. Default 10. */
  backupCodeCount?: number;
  /**
   * Enrolling an authenticator (`setup`, `qr`, `confirm`) needs a sign-in at most this many
   * seconds old (the access token's `auth_time`; refreshing does not renew it). Otherwise the
   * answer is 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`
   * (RFC 9470), so a stolen access or refresh token cannot add an attacker's authenticator to an
   * account (one stolen within the window still can; the window bounds that). `false` turns the
   * check off. Default 900 (15 min). `RequireRecentSignIn` applies the same check, with its own window, to your routes.
   */
  enrollmentMaxAuthAge?: number | false;
  /**
   * Turning two-factor off (`disable`) and replacing the backup codes (`backup-codes`) need a
   * sign-in at most this many seconds old, with the same 401 step-up answer as enrolment, on top
   * of a current authenticator or backup code: a stolen session (access or refresh token) alone
   * cannot remove or take over the second factor (ASVS 5.0 7.5.1). `false` turns the check off.
   * @default the value of `enrollmentMaxAuthAge` (900, 15 min; off when that is `false`)
   */
  managementMaxAuthAge?: number | false;
  /**
   * Users for whom a second factor is mandatory: `VerifiedUserGuard` answers 403 to their sessions
   * without one. Method syntax: takes your own user type. Default: nobody.
   */
  required?(user: object): boolean;
}

/** The keys `totp` takes (checked at startup). */
export const TOTP_KEYS = {
  issuer: true,
  window: true,
  algorithm: true,
  digits: true,
  period: true,
  maxFailures: true,
  failureWindow: true,
  mfaTokenTtl: true,
  mfaMaxAttempts: true,
  backupCodeCount: true,
  enrollmentMaxAuthAge: true,
  managementMaxAuthAge: true,
  required: true,
} as const satisfies Record<keyof TotpOptions, true>;

/** {@link TotpOptions} after defaults and validation. */
export interface ResolvedTotpOptions {
  readonly issuer: string;
  readonly window: number;
  readonly algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  readonly digits: 6 | 8;
  readonly period: number;
  readonly maxFailures: number;
  readonly failureWindow: number;
  readonly mfaTokenTtl: number;
  readonly mfaMaxAttempts: number;
  readonly backupCodeCount: number;
  /** Seconds, or null when enrolment does not look at the sign-in's age. */
  readonly enrollmentMaxAuthAge: number | null;
  /** Seconds, or null when `disable` and `backup-codes` do not look at the sign-in's age. */
  readonly managementMaxAuthAge: number | null;
  readonly required: (user: object) => boolean;
}

/** Validates `totp` and fills in the defaults. */
export function resolveTotpOptions(totp: TotpOptions = {}): ResolvedTotpOptions {
  const issuer = nonEmpty('totp.issuer', totp.issuer, TOKEN_DEFAULTS.issuer);
  if (issuer.includes(':')) {
    throw new OtpAuthConfigurationError(
      '`totp.issuer` may not contain `:` (the key URI uses it to separate issuer and account).',
    );
  }
  const algorithm = totp.algorithm ?? 'SHA1';
  if (!['SHA1', 'SHA256', 'SHA512'].includes(algorithm)) {
    throw new OtpAuthConfigurationError(
      `\`totp.algorithm\` must be 'SHA1', 'SHA256' or 'SHA512' (got ${String(algorithm)}).`,
    );
  }
  const digits = totp.digits ?? 6;
  if (digits !== 6 && digits !== 8) {
    throw new OtpAuthConfigurationError(`\`totp.digits\` must be 6 or 8 (got ${String(digits)}).`);
  }
  if (totp.required !== undefined && typeof totp.required !== 'function') {
    throw new OtpAuthConfigurationError('`totp.required` must be a function `(user) => boolean`.');
  }
  const enrollmentMaxAuthAge =
    totp.enrollmentMaxAuthAge === false
      ? null
      : integer('totp.enrollmentMaxAuthAge', totp.enrollmentMaxAuthAge, 900, 1, YEAR);
  return {
    issuer,
    window: integer('totp.window', totp.window, 1, 0, 10),
    algorithm,
    digits,
    period: integer('totp.period', totp.period, 30, 15, 300),
    maxFailures: integer('totp.maxFailures', totp.maxFailures, 10, 1, 10_000),
    failureWindow: integer('totp.failureWindow', totp.failureWindow, 900, 1, YEAR),
    mfaTokenTtl: integer('totp.mfaTokenTtl', totp.mfaTokenTtl, 300, 30, 3600),
    mfaMaxAttempts: integer('totp.mfaMaxAttempts', totp.mfaMaxAttempts, 5, 1, 100),
    backupCodeCount: integer('totp.backupCodeCount', totp.backupCodeCount, 10, 1, 50),
    enrollmentMaxAuthAge,
    // Follows enrolment unless set: an app that turned that check off expects this one off too.
    managementMaxAuthAge:
      totp.managementMaxAuthAge === false
        ? null
        : totp.managementMaxAuthAge === undefined
          ? enrollmentMaxAuthAge
          : integer('totp.managementMaxAuthAge', totp.managementMaxAuthAge, 900, 1, YEAR),
    required: totp.required?.bind(totp) ?? (() => false),
  };
}

/**
 * What the two-factor services read of the module's options. They hold the secret: TOTP secrets
 * are encrypted and backup codes hashed under keys derived from it (and from `previousSecrets`).
 */
export interface TotpConfig {
  readonly totp: ResolvedTotpOptions;
  readonly secret: string;
  readonly previousSecrets: readonly string[];
  readonly store: UserStore & TotpStore;
  /** Epoch milliseconds. */
  readonly clock: () => number;
  /** `iss` and `aud` of the `mfa_token`. */
  readonly issuer: string;
  readonly audience: string;
}

/** DI token of {@link TotpConfig}. */
export const OTP_TOTP_CONFIG = Symbol('OTP_TOTP_CONFIG');
