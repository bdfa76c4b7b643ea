import type { OtpDeliveryContext } from './otp-sender.interface.js';

/** One code on its way to an address. */
export interface CodeMessage {
  readonly email: string;
  readonly code: string;
  readonly context: OtpDeliveryContext;
  /** Takes the code back when it cannot be delivered, so nothing usable is left behind. */
  readonly withdraw: () => Promise<void>;
}

/**
 * How a code reaches the sender: inline (`InlineDelivery`, the request waits, or answers at a
 * fixed deadline) or through the background outbox (`CodeOutbox`). `LoginCodeService` calls only
 * this; the provider of {@link OTP_CODE_DELIVERY} picks the implementation from `delivery.mode`,
 * and each implementation owns its failure path (withdrawing the code, answering 503 or not).
 */
export interface CodeDelivery {
  /**
   * Called before a code is issued, for every address alike: throws (503) when no message could
   * be taken now (a full outbox), so nothing is issued that cannot go out.
   */
  assertReady(): void;
  /**
   * Delivers `message`, or none (`null`: an unknown address of an invite-only app, answered like
   * the others). On failure the implementation withdraws the code.
   * @param startedAt - `performance.now()` when the request began (for a fixed answer time).
   */
  deliver(message: CodeMessage | null, startedAt: number): Promise<void>;
}

/** DI token of the {@link CodeDelivery} in use. */
export const OTP_CODE_DELIVERY = Symbol('OTP_CODE_DELIVERY');
