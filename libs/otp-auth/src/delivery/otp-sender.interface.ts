/** Why a code is being sent. Login is the only purpose of the core; 2FA flows add their own. */
export type OtpPurpose = 'login' | (string & {});

/** What a sender knows about the code besides the code itself. */
export interface OtpDeliveryContext {
  readonly purpose: OtpPurpose;
  /** When the code stops working. */
  readonly expiresAt: Date;
  /** The code's lifetime in seconds, for messages such as "valid for 10 minutes". */
  readonly ttlSeconds: number;
  /** Preferred language of the recipient (BCP 47, e.g. `de-CH`), when the client said. */
  readonly locale?: string;
  /**
   * Identifies this message (a random UUID): the same on every attempt to deliver it, outbox
   * retries and a sender's own retries alike, and new for every code. A receiver that keeps the
   * ids it has handled can drop a retry whose earlier attempt got through but whose answer was
   * lost. The module always sets it; it is optional so that contexts built by hand (tests,
   * custom flows) and senders written before it still compile.
   */
  readonly deliveryId?: string;
  /**
   * Counts one message to `recipient` (the destination a sender resolved, e.g. an E.164 phone
   * number) against `delivery.recipientLimit`, whatever address asked for it, so look-alike or
   * throwaway addresses cannot text one number without end. Resolves false when the cap is
   * reached: then send nothing and throw {@link NoRecipientError} with reason `recipient_limit`.
   * Call it right before each attempt (a retry may send a second message). The module sets it;
   * optional for hand-built contexts.
   */
  readonly admitRecipient?: (recipient: string) => Promise<boolean>;
}

/**
 * Delivers a code to an address. Throwing (or rejecting) tells the module the code did not
 * go out: the code is withdrawn, the cooldown is not consumed, and the client gets a 503 (when
 * responses are not answered at a fixed time, see `delivery.uniformTiming`; then the client gets
 * the usual answer and the failure is reported by `code.delivery_failed`).
 * {@link NoRecipientError} is the exception: no recipient is not a failure.
 */
export type OtpSendFunction = (email: string, code: string, context: OtpDeliveryContext) => Promise<void>;

/** A sender as an injectable class (registered with `OtpAuthModule.forRoot({ sender })`). */
export interface OtpSender {
  send(email: string, code: string, context: OtpDeliveryContext): Promise<void>;
  /**
   * True when the sender looks the address up and may find nowhere to send
   * ({@link NoRecipientError}), as `SmsOtpSender` does: then inline delivery answers every
   * request at `delivery.responseDeadline`, so response time does not tell who has a recipient.
   * For a `sendOtp` function, set `delivery.uniformTiming: true` instead.
   */
  readonly resolvesRecipients?: boolean;
}

/** Injection token of the active sender. */
export const OTP_SENDER = Symbol('OTP_SENDER');

/** An error text with any copy of the code masked (a provider may echo the request back). */
export function withoutCode(text: string, code: string): string {
  return text.split(code).join('***');
}
