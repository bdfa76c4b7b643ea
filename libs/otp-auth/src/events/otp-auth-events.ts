import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OtpAuthEvent, TimedOtpAuthEvent } from './otp-auth-event.js';

/** What {@link OtpAuthEvents} reads of the module's options. */
export interface EventsConfig {
  /** The app's `onEvent` option, or undefined. */
  readonly onEvent: ((event: TimedOtpAuthEvent) => void | Promise<void>) | undefined;
  /** Epoch milliseconds, for the events' `at`. */
  readonly clock: () => number;
}

/** DI token of {@link EventsConfig}. */
export const OTP_EVENTS_CONFIG = Symbol('OTP_EVENTS_CONFIG');

/**
 * Hands events to the app's `onEvent` option. A throwing or rejecting handler is logged and
 * otherwise ignored: auditing must not break sign-in.
 */
@Injectable()
export class OtpAuthEvents {
  private readonly logger = new Logger('OtpAuth');

  constructor(@Inject(OTP_EVENTS_CONFIG) private readonly config: EventsConfig) {}

  emit(event: OtpAuthEvent): void {
    const handler = this.config.onEvent;
    if (!handler) return;
    const timed: TimedOtpAuthEvent = { ...event, at: this.config.clock() };
    try {
      const result = handler(timed);
      if (result instanceof Promise) result.catch((error: unknown) => this.report(event.type, error));
    } catch (error) {
      this.report(event.type, error);
    }
  }

  private report(type: string, error: unknown): void {
    this.logger.error(`onEvent handler failed for ${type}: ${(error as Error)?.message ?? String(error)}`);
  }
}
