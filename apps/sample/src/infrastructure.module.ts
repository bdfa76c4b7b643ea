import { Global, Module, type DynamicModule, type OnApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { ConsoleOtpSender, SmsOtpSender, WebhookOtpSender, type OtpSender } from 'nestjs-otp-auth';
import { RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS } from 'nestjs-otp-auth/redis';
import { SmtpOtpSender } from 'nestjs-otp-auth/smtp';
import type { SampleConfig } from './config.js';
import { SAMPLE_REDIS } from './health.controller.js';
import { SAMPLE_PHONE_LOOKUP, type PhoneLookup } from './persistence.module.js';

/** Injection token of the sender chosen by `OTP_DELIVERY`. */
export const SAMPLE_SENDER = Symbol('SAMPLE_SENDER');

/** Builds the sender for `OTP_DELIVERY`. SMS goes to the user's `phone`; users without one get none. */
function createSender(config: SampleConfig, phoneOf: PhoneLookup): OtpSender {
  const { delivery, appName } = config;
  switch (delivery.kind) {
    case 'console':
      return new ConsoleOtpSender();
    case 'webhook':
      return new WebhookOtpSender({ url: delivery.url, secret: delivery.secret });
    case 'smtp':
      return new SmtpOtpSender({
        url: delivery.url,
        from: delivery.from,
        appName,
        ...(delivery.requireTls !== undefined && { tls: { requireTLS: delivery.requireTls } }),
      });
    case 'sms':
      // A user without a phone is a NoRecipientError, which the module answers like an unknown address.
      return new SmsOtpSender({
        accountSid: delivery.accountSid,
        authToken: delivery.authToken,
        ...(delivery.from !== undefined
          ? { from: delivery.from }
          : { messagingServiceSid: delivery.messagingServiceSid! }),
        ...(delivery.baseUrl !== undefined ? { baseUrl: delivery.baseUrl } : {}),
        appName,
        resolveRecipient: phoneOf,
      });
  }
}

/** Quits the shared Redis client last, after the module's own users of it have stopped. */
@Injectable()
class RedisShutdown implements OnApplicationShutdown {
  constructor(@Inject(SAMPLE_REDIS) private readonly redis: Redis | null) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }
}

/** The sample app's connections and sender, available everywhere (the OTP module's factory injects them). */
@Global()
@Module({})
export class InfrastructureModule {
  static forRoot(config: SampleConfig): DynamicModule {
    return {
      module: InfrastructureModule,
      providers: [
        {
          provide: SAMPLE_REDIS,
          useFactory: (): Redis | null => {
            if (config.redisUrl === undefined) return null;
            const redis = new Redis(config.redisUrl, RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS);
            // Outages surface as failed commands (handled by the failure policy) and in /health/ready.
            redis.on('error', () => undefined);
            return redis;
          },
        },
        {
          provide: SAMPLE_SENDER,
          inject: [SAMPLE_PHONE_LOOKUP],
          useFactory: (phoneOf: PhoneLookup) => createSender(config, phoneOf),
        },
        RedisShutdown,
      ],
      exports: [SAMPLE_REDIS, SAMPLE_SENDER],
    };
  }
}
