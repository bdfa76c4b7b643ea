import type { FactoryProvider } from '@nestjs/common';
import { CodeOutbox } from './code-outbox.js';
import { OTP_CODE_DELIVERY, type CodeDelivery } from './code-delivery.js';
import { OTP_DELIVERY_CONFIG, type DeliveryConfig } from './delivery.options.js';
import { InlineDelivery } from './inline-delivery.js';

/** Provides {@link OTP_CODE_DELIVERY}: the outbox with `delivery.mode: 'outbox'`, else inline delivery. */
export const codeDeliveryProvider: FactoryProvider<CodeDelivery> = {
  provide: OTP_CODE_DELIVERY,
  inject: [OTP_DELIVERY_CONFIG, InlineDelivery, CodeOutbox],
  useFactory: (config: DeliveryConfig, inline: InlineDelivery, outbox: CodeOutbox) =>
    config.delivery.mode === 'outbox' ? outbox : inline,
};
