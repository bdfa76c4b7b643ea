import { Injectable, Logger } from '@nestjs/common';
import type { OtpDeliveryContext, OtpSender } from './otp-sender.interface.js';

/**
 * Prints codes to the log. For local development only: anyone who can read the logs can sign
 * in as anyone. The sample app refuses it when NODE_ENV=production.
 */
@Injectable()
export class ConsoleOtpSender implements OtpSender {
  private readonly logger = new Logger('OtpAuth:console-delivery');

  async send(email: string, code: string, context: OtpDeliveryContext): Promise<void> {
    this.logger.log(`${context.purpose} code for ${email}: ${code} (valid ${context.ttlSeconds} s)`);
  }
}
