import { Module, type DynamicModule } from '@nestjs/common';
import { EventEmitter2, EventEmitterModule } from '@nestjs/event-emitter';
import { TerminusModule } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { OtpAuthModule, type OtpAuthModuleOptions, type OtpAuthStore, type OtpSender } from 'nestjs-otp-auth';
import { RedisRateLimitStorage, RedisRevocationBroadcaster } from 'nestjs-otp-auth/redis';
import { otpAuthModuleOptions, type SampleConfig } from './config.js';
import { AUDIT_EVENT_PREFIX, AuditLogListener } from './audit-log.listener.js';
import { ExampleController } from './example.controller.js';
import { HealthController, SAMPLE_REDIS } from './health.controller.js';
import { InfrastructureModule, SAMPLE_SENDER } from './infrastructure.module.js';
import { PersistenceModule, SAMPLE_STORE } from './persistence.module.js';
import type { SampleUser } from './sample-user.js';
import { WebUiModule } from './web-ui.module.js';

/** The root module class; its imports come from {@link createAppModule}. */
@Module({})
export class AppModule {}

/**
 * Builds the sample app's root module for a configuration, so tests can start the app with
 * a configuration of their choice rather than the process environment.
 *
 * @param config - What {@link loadConfig} returned (or a test's own).
 * @returns The root module: TypeORM, the OTP auth module with its routes, the example routes and
 *   the sign-in page (unless `OTP_WEB_UI=false`).
 */
export function createAppModule(config: SampleConfig): DynamicModule {
  return {
    module: AppModule,
    imports: [
      PersistenceModule.forRoot(config.database, config.databaseTimeout, config.databaseSynchronize),
      EventEmitterModule.forRoot({ wildcard: true }),
      TerminusModule,
      InfrastructureModule.forRoot(config),
      OtpAuthModule.forRootAsync({
        isGlobal: true,
        inject: [SAMPLE_STORE, EventEmitter2, SAMPLE_SENDER, SAMPLE_REDIS],
        useFactory: (
          store: OtpAuthStore,
          emitter: EventEmitter2,
          sender: OtpSender,
          redis: Redis | null,
        ): OtpAuthModuleOptions => {
          const options = otpAuthModuleOptions(config);
          return {
            ...options,
            store,
            sendOtp: (email, code, context) => sender.send(email, code, context),
            delivery: {
              ...options.delivery,
              // The sender reaches the module through `sendOtp`, which cannot say that it resolves
              // recipients (SMS: some users have no phone), so say it here: uniform response times.
              ...(sender.resolvesRecipients === true ? { uniformTiming: true } : {}),
            },
            rateLimits: {
              ...options.rateLimits,
              // With Redis, counters are shared by every instance; without it, each counts alone.
              ...(redis
                ? { storage: new RedisRateLimitStorage({ client: redis, keyPrefix: `${config.redisKeyPrefix}rl:` }) }
                : {}),
            },
            ...(redis
              ? {
                  revocationBroadcaster: new RedisRevocationBroadcaster({
                    client: redis,
                    channel: `${config.redisKeyPrefix}revocations`,
                  }),
                }
              : {}),
            getAdditionalClaims: (user) => ({ display_name: (user as SampleUser).displayName ?? null }),
            // Re-emitted on @nestjs/event-emitter, where AuditLogListener (or any app code) picks them up.
            onEvent: (event) => {
              emitter.emit(`${AUDIT_EVENT_PREFIX}.${event.type}`, event);
            },
          };
        },
      }),
      WebUiModule.forRoot(config.webUi),
    ],
    controllers: [ExampleController, HealthController],
    providers: [AuditLogListener],
  };
}
