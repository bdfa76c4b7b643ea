/**
 * A `fetch` implementation: the global one (default), or a wrapper (a cookie jar in Node, a test
 * double, instrumentation). It is called with a URL string and a `RequestInit`, or (from
 * {@link OtpAuthClient.fetch}) with whatever input its caller passed.
 */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call (then rejected with `OtpAuthError` code `aborted`). */
  readonly signal?: AbortSignal;
}

/**
 * The claims of an access token issued by nestjs-otp-auth, as the client decodes them (without
 * verifying: the client has no key and needs none; the server checks every request).
 */
export interface AccessTokenClaims {
  /** The user id. */
  readonly sub: string;
  /** Session id (one per sign-in; stays the same across refreshes). */
  readonly sid?: string;
  /** Token id. */
  readonly jti?: string;
  /** Token type, `access`. */
  readonly typ?: string;
  /** Authentication methods (RFC 8176): `otp`, plus `totp` or `backup` after a second factor. */
  readonly amr?: readonly string[];
  /** When the session signed in (epoch seconds); refreshing keeps it. */
  readonly auth_time?: number;
  /** Issued at (epoch seconds, server clock). */
  readonly iat?: number;
  /** Expires at (epoch seconds, server clock). */
  readonly exp?: number;
  /** Issuer. */
  readonly iss?: string;
  /** Audience. */
  readonly aud?: string | readonly string[];
  /** Custom claims from the server's `getAdditionalClaims`. */
  readonly [claim: string]: unknown;
}

/** The signed-in state: the access token and what it says. Immutable; a refresh makes a new one. */
export interface Session<TClaims extends object = Record<string, unknown>> {
  /** The access token (send as `Authorization: Bearer …`; {@link OtpAuthClient.fetch} does). */
  readonly accessToken: string;
  /**
   * When the access token expires, in ms since the epoch by **this** machine's clock (computed
   * from the answer's `expires_in` on receipt, so a skewed client clock does not matter).
   */
  readonly expiresAt: number;
  /** The user id (`claims.sub`). */
  readonly userId: string;
  /** The access token's claims, unverified. */
  readonly claims: AccessTokenClaims & TClaims;
}

/**
 * Where the client stands: `unknown` until it has looked for a session (the first call that
 * needs a token, or {@link OtpAuthClient.restore}), then `signed_in` or `signed_out`.
 */
export type SessionStatus = 'unknown' | 'signed_in' | 'signed_out';

/** Input of {@link OtpAuthClient.requestOtp}. */
export interface RequestOtpInput {
  /** The address to send the code to (the server trims and lower-cases it). */
  readonly email: string;
  /** BCP 47 language tag for the message (`de-CH`); default the server's. */
  readonly locale?: string;
}

/** Input of {@link OtpAuthClient.verifyOtp}. */
export interface VerifyOtpInput {
  /** The address the code was sent to. */
  readonly email: string;
  /** The digits from the message. */
  readonly code: string;
}

/** Input of `totp.confirm`. */
export interface TotpCodeInput {
  /** A current 6–8 digit code from the authenticator app. */
  readonly code: string;
}

/** Answer of {@link OtpAuthClient.requestOtp}. */
export interface RequestOtpResult {
  /** The server's message; the same for every address (no account enumeration). */
  readonly message: string;
  /** Lifetime of the code in seconds. */
  readonly expiresIn: number;
  /** The code itself: only when the server runs in developer mode. */
  readonly devCode?: string;
}

/** Result of a first factor ({@link OtpAuthClient.verifyOtp}): a session, or a second step. */
export type SignInResult<TClaims extends object = Record<string, unknown>> =
  | {
      /** Signed in; the client holds the session now. */
      readonly type: 'signed_in';
      /** The new session. */
      readonly session: Session<TClaims>;
    }
  | {
      /** The user has TOTP on: call {@link OtpAuthClient.verifyMfa} with this token and a code. */
      readonly type: 'mfa_required';
      /** Short-lived, single-use token for {@link OtpAuthClient.verifyMfa}. */
      readonly mfaToken: string;
      /** Lifetime of `mfaToken` in seconds. */
      readonly expiresIn: number;
    };

/** A second factor: a current authenticator code, or one of the backup codes (exactly one). */
export type SecondFactor =
  | {
      /** A current 6–8 digit authenticator code. */
      readonly code: string;
      /** Not with `code`. */
      readonly backupCode?: never;
    }
  | {
      /** One of the backup codes (`ABCDE-FGHJK`); each works once. */
      readonly backupCode: string;
      /** Not with `backupCode`. */
      readonly code?: never;
    };

/** Input of {@link OtpAuthClient.verifyMfa}. */
export type VerifyMfaInput = SecondFactor & {
  /** The `mfaToken` from {@link OtpAuthClient.verifyOtp}. */
  readonly mfaToken: string;
};

/** Input of `totp.disable` and `totp.regenerateBackupCodes`: a second factor and an option. */
export type ManageSecondFactorInput = SecondFactor & {
  /**
   * Also end every other session of the user (their tokens stop working at once); this one
   * stays signed in. Default false.
   */
  readonly endOtherSessions?: boolean;
};

/** Answer of `totp.setup`: the new secret to show the user (until confirmed). */
export interface TotpSetupResult {
  /** Base32 secret, for manual entry. */
  readonly secret: string;
  /** The `otpauth://totp/…` key URI. */
  readonly otpauthUrl: string;
  /** The key URI as a `data:image/png;base64,…` QR code, usable as an `<img src>`. */
  readonly qrCode: string;
}

/** Answer of `totp.confirm`: 2FA is on; every earlier session ended and this client holds a new one. */
export interface TotpConfirmResult<TClaims extends object = Record<string, unknown>> {
  /** The backup codes: shown once, store them now. */
  readonly backupCodes: readonly string[];
  /** The new two-factor session (`amr` includes `totp`). */
  readonly session: Session<TClaims>;
}

/** Answer of `totp.disable`. */
export interface TotpDisableResult {
  /** Other sessions ended (0 unless `endOtherSessions`). */
  readonly revokedSessions: number;
}

/** Answer of `totp.regenerateBackupCodes`. */
export interface BackupCodesResult {
  /** The new backup codes (the old set stops working): shown once. */
  readonly backupCodes: readonly string[];
  /** Other sessions ended (0 unless `endOtherSessions`). */
  readonly revokedSessions: number;
}

/** Answer of {@link OtpAuthClient.logoutAll}. */
export interface LogoutAllResult {
  /** Sessions the server ended (this one included). */
  readonly revokedSessions: number;
}

/** The TOTP routes (`<prefix>/totp/…`), as `client.totp`. All need a session. */
export interface OtpAuthTotpApi<TClaims extends object = Record<string, unknown>> {
  /**
   * Starts enrolling an authenticator app (replaces a pending enrolment). Needs a recent
   * sign-in (default 15 minutes; else `reauthentication_required`).
   *
   * @throws {@link OtpAuthError} `conflict` when 2FA is already on.
   */
  setup(options?: CallOptions): Promise<TotpSetupResult>;
  /** The pending enrolment's QR code as a PNG `Blob` (`GET totp/qr`). */
  qrCode(options?: CallOptions): Promise<Blob>;
  /**
   * Activates 2FA with a current code. The server ends every earlier session of the user and
   * opens a new two-factor session, which this client adopts (`signed_in` event; other tabs too).
   *
   * @throws {@link OtpAuthError} `invalid_code`, `not_found` (no pending enrolment).
   */
  confirm(input: TotpCodeInput, options?: CallOptions): Promise<TotpConfirmResult<TClaims>>;
  /**
   * Turns 2FA off; needs a recent sign-in and a current code or a backup code.
   *
   * @throws {@link OtpAuthError} `invalid_code`, `reauthentication_required`, `validation_failed` (2FA not on).
   */
  disable(input: ManageSecondFactorInput, options?: CallOptions): Promise<TotpDisableResult>;
  /**
   * Replaces the backup codes; needs a recent sign-in and a current code or a backup code.
   *
   * @throws {@link OtpAuthError} `invalid_code`, `reauthentication_required`.
   */
  regenerateBackupCodes(input: ManageSecondFactorInput, options?: CallOptions): Promise<BackupCodesResult>;
}

/** Why a session ended. */
export type SignOutReason =
  /** `logout()` (here or in another tab). */
  | 'logout'
  /** `logoutAll()`. */
  | 'logout_all'
  /** The server refused the refresh token (expired, revoked, reused, `sessionMaxAge` reached). */
  | 'session_ended';

/** What {@link OtpAuthClient.onSessionChange} listeners receive. */
export type SessionChangeEvent<TClaims extends object = Record<string, unknown>> =
  | {
      /** A session began: sign-in, TOTP confirmation, or one restored at startup. */
      readonly type: 'signed_in';
      /** The session. */
      readonly session: Session<TClaims>;
      /** `this_tab`, `other_tab` (adopted over the cross-tab channel), or `restore` (`restore()`: refresh cookie or stored tokens). */
      readonly source: 'this_tab' | 'other_tab' | 'restore';
    }
  | {
      /** The access token was replaced by a refreshed one (same session). */
      readonly type: 'refreshed';
      /** The session with the new access token. */
      readonly session: Session<TClaims>;
      /** `this_tab`, or `other_tab` (another tab refreshed and shared the token). */
      readonly source: 'this_tab' | 'other_tab';
    }
  | {
      /** The session ended. */
      readonly type: 'signed_out';
      /** Always null. */
      readonly session: null;
      /** Why. */
      readonly reason: SignOutReason;
      /** `this_tab` or `other_tab`. */
      readonly source: 'this_tab' | 'other_tab';
    };

/** An {@link OtpAuthClient.onSessionChange} listener. */
export type SessionChangeListener<TClaims extends object = Record<string, unknown>> = (
  event: SessionChangeEvent<TClaims>,
) => void;

/** Time and timers; the default uses `Date.now` and `setTimeout`. Tests pass a fake one. */
export interface Clock {
  /** Current time in ms since the epoch. */
  now(): number;
  /** Calls `callback` after `ms`; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending {@link Clock.setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/** The real clock. Its timers do not keep a Node process alive (`unref`). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
