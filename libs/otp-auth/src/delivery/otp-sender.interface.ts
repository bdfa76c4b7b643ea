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
}

/**
 * A delivery failure that retrying will not fix (a rejected address, a 4xx from the
 * provider). Senders throw it so the outbox stops retrying; any other error is retried.
 */
export class PermanentDeliveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentDeliveryError';
  }
}

/**
 * Delivers a code to an address. Throwing (or rejecting) tells the module the code did not
 * go out: the code is withdrawn, the cooldown is not consumed, and the client gets a 503.
 */
export type OtpSendFunction = (email: string, code: string, context: OtpDeliveryContext) => Promise<void>;

/** A sender as an injectable class (registered with `OtpAuthModule.forRoot({ sender })`). */
export interface OtpSender {
  send(email: string, code: string, context: OtpDeliveryContext): Promise<void>;
}

/** Injection token of the active sender. */
export const OTP_SENDER = Symbol('OTP_SENDER');

/** An error text with any copy of the code masked (a provider may echo the request back). */
export function withoutCode(text: string, code: string): string {
  return text.split(code).join('***');
}
