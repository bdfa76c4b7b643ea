import type { CleanupReport } from '../store/otp-auth-store.interface.js';
import { type NoRecipientReason } from '../errors.js';

/** Why a code or second factor was refused. */
export type RefusalReason = 'no_code' | 'expired' | 'wrong' | 'attempts_exhausted' | 'already_used';

/**
 * Why a session ended: `max_age` and `idle_timeout` are refreshes refused by `sessionMaxAge` and
 * `sessionIdleTimeout`; the others end it before its time.
 */
export type SessionRevocationReason =
  | 'logout'
  | 'logout_all'
  | 'refresh_reuse'
  | 'second_factor_enabled'
  /** Ended on request (`end_other_sessions`) by another session of the user changing its 2FA. */
  | 'other_sessions_ended'
  | 'second_factor_missing'
  | 'user_gone'
  | 'max_age'
  | 'idle_timeout';

/**
 * Security events the module emits, for audit logs and alerting. They never carry a code, a
 * token, a TOTP secret or a backup code; addresses and user ids are included because an audit
 * trail needs them (treat them as personal data).
 */
export type OtpAuthEvent =
  | { type: 'code.sent'; email: string; purpose: string; channel: 'inline' | 'outbox' }
  | { type: 'code.delivery_failed'; email: string; purpose: string; permanent: boolean; error: string }
  /**
   * The sender found nowhere to send (`no_recipient`, e.g. no phone on file) or the destination's
   * cap was reached (`recipient_limit`); the requester got the usual answer.
   */
  | { type: 'code.not_sent'; email: string; purpose: string; reason: NoRecipientReason }
  | { type: 'code.verified'; email: string; userId: string }
  | { type: 'code.failed'; email: string; reason: RefusalReason }
  | { type: 'code.locked_out'; email: string }
  | { type: 'code.failure_limit_reached'; email: string; failures: number }
  | { type: 'session.created'; userId: string; sessionId: string; amr: readonly string[] }
  | { type: 'session.revoked'; sessionId: string; reason: SessionRevocationReason }
  | { type: 'refresh.reuse_detected'; userId: string; sessionId: string }
  | { type: 'totp.enabled'; userId: string }
  | { type: 'totp.disabled'; userId: string }
  | { type: 'totp.failed'; userId: string; method: 'totp' | 'backup' }
  | { type: 'totp.replayed'; userId: string }
  | { type: 'totp.backup_codes_regenerated'; userId: string }
  | { type: 'rate_limit.exceeded'; scope: string; route: string }
  | { type: 'rate_limit.storage_unavailable'; policy: string; error: string }
  /** A scheduled cleanup (`cleanupInterval`) ran: rows removed per kind, and how long it took. */
  | ({ type: 'cleanup.completed'; durationMs: number } & CleanupReport)
  /** A scheduled cleanup failed; the next one runs as planned. `errorClass` is e.g. `QueryFailedError`. */
  | { type: 'cleanup.failed'; errorClass: string; error: string };

/** An event with the time it happened (epoch ms, from the module's clock). */
export type TimedOtpAuthEvent = OtpAuthEvent & { readonly at: number };

/** The `type` values of {@link OtpAuthEvent}. */
export type OtpAuthEventType = OtpAuthEvent['type'];
