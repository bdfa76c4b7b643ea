import { Inject, Injectable } from '@nestjs/common';
import { OTP_DELIVERY_CONFIG, type DeliveryConfig } from './delivery.options.js';
import { SecretKeys } from '../crypto/secret-keys.js';
import { OTP_RATE_LIMIT_STORAGE, type RateLimitStorage } from '../rate-limits/rate-limit-storage.interface.js';
import type { OtpDeliveryContext } from './otp-sender.interface.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/**
 * The per-destination cap (`delivery.recipientLimit`): how many messages one phone number (or
 * whatever a sender resolves an address to) receives, whichever addresses asked. Per-address
 * counters cannot see that `kévin@`, `kèvin@` and `kevin@exámple.com` all lead to one phone.
 *
 * Counted in the module's rate-limit storage ({@link OTP_RATE_LIMIT_STORAGE}, shared by every
 * instance when it is Redis) under a keyed hash of the destination, so the storage never holds a
 * phone number. It does not follow `rateLimits.enabled`: a gateway doing the request limits
 * cannot see destinations.
 */
@Injectable()
export class RecipientLimit {
  constructor(
    @Inject(OTP_DELIVERY_CONFIG) private readonly config: DeliveryConfig,
    private readonly keys: SecretKeys,
    private readonly events: OtpAuthEvents,
    @Inject(OTP_RATE_LIMIT_STORAGE) private readonly storage: RateLimitStorage,
  ) {}

  /** The context senders get: with `admitRecipient` bound to this cap (unchanged when the cap is off). */
  bind(context: OtpDeliveryContext): OtpDeliveryContext {
    if (this.config.delivery.recipientLimit.length === 0) return context;
    return { ...context, admitRecipient: (recipient) => this.admit(recipient) };
  }

  /**
   * Counts one message to `recipient` under every rule at once; false (nothing counted) when one
   * is full. Throws when the storage is down under `'fail-closed'`, which senders pass on as a
   * transient delivery failure.
   */
  async admit(recipient: string): Promise<boolean> {
    const rules = this.config.delivery.recipientLimit;
    if (rules.length === 0) return true;
    const id = this.keys.identityKeyOf(`recipient\0${recipient}`);
    const decision = await this.storage.consume(
      rules.map((rule) => ({
        key: `deliver:recipient:${rule.window}:${id}`,
        limit: rule.limit,
        windowMs: rule.window * 1000,
      })),
      this.config.clock(),
    );
    if (!decision.allowed)
      this.events.emit({ type: 'rate_limit.exceeded', scope: 'deliver-recipient', route: 'deliver' });
    return decision.allowed;
  }
}
