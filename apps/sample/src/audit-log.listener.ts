import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import type { TimedOtpAuthEvent } from 'nestjs-otp-auth';

/** Prefix under which the sample app re-emits the module's events on `@nestjs/event-emitter`. */
export const AUDIT_EVENT_PREFIX = 'otp-auth';

/**
 * Writes every security event as one JSON line (`{"audit":"code.sent",...}`), ready for a log
 * shipper. The module's events carry no codes, tokens or TOTP secrets, so nothing is redacted here.
 */
@Injectable()
export class AuditLogListener {
  private readonly logger = new Logger('Audit');

  @OnEvent(`${AUDIT_EVENT_PREFIX}.**`)
  write(event: TimedOtpAuthEvent): void {
    const { type, at, ...fields } = event;
    this.logger.log(JSON.stringify({ audit: type, at: new Date(at).toISOString(), ...fields }));
  }
}
