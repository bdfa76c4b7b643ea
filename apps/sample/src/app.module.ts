import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule, type TypeOrmModuleOptions } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ConsoleOtpSender, OtpAuthModule, WebhookOtpSender, type OtpAuthModuleOptions } from 'nestjs-otp-auth';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import type { DatabaseConfig, SampleConfig } from './config.js';
import { ExampleController } from './example.controller.js';
import { User } from './user.entity.js';

/** TypeORM connection options for a parsed `DATABASE_URL`. */
function typeOrmOptions(database: DatabaseConfig): TypeOrmModuleOptions {
  const common = {
    entities: [User, ...otpAuthEntities],
    // Creates and alters tables to match the entities: convenient for a sample, unsafe for
    // production data. Production should set this to false and run migrations instead.
    synchronize: true,
  };
  if (database.type === 'better-sqlite3') {
    // SQLite creates the file but not its directory.
    if (database.database !== ':memory:') mkdirSync(dirname(database.database), { recursive: true });
    return { ...common, type: 'better-sqlite3', database: database.database };
  }
  return { ...common, type: database.type, url: database.url };
}

/** The root module class; its imports come from {@link createAppModule}. */
@Module({})
export class AppModule {}

/**
 * Builds the sample app's root module for a configuration, so tests can start the app with
 * a configuration of their choice rather than the process environment.
 *
 * @param config - What {@link loadConfig} returned (or a test's own).
 * @returns The root module: TypeORM, the OTP auth module with its routes, and the example routes.
 */
export function createAppModule(config: SampleConfig): DynamicModule {
  const { delivery } = config;
  // Webhook delivery is a plain object; console delivery is an injectable class the module resolves.
  const webhook =
    delivery.kind === 'webhook' ? new WebhookOtpSender({ url: delivery.url, secret: delivery.secret }) : undefined;

  return {
    module: AppModule,
    imports: [
      TypeOrmModule.forRoot(typeOrmOptions(config.database)),
      OtpAuthModule.forRootAsync({
        isGlobal: true,
        sender: webhook ? undefined : ConsoleOtpSender,
        inject: [DataSource],
        useFactory: (dataSource: DataSource): OtpAuthModuleOptions => ({
          secret: config.secret,
          store: new TypeOrmOtpAuthStore(dataSource, { userEntity: User }),
          sendOtp: webhook ? (email, code, context) => webhook.send(email, code, context) : undefined,
          developerMode: config.developerMode,
          accessTokenTtl: config.accessTokenTtl,
          refreshTokenTtl: config.refreshTokenTtl,
          otpTtl: config.otpTtl,
          resendCooldown: config.resendCooldown,
          maxAttempts: config.maxAttempts,
          refreshTokenDelivery: config.refreshTokenDelivery,
          cookie: { secure: config.cookieSecure },
          getAdditionalClaims: (user) => ({ display_name: (user as User).displayName ?? null }),
        }),
      }),
    ],
    controllers: [ExampleController],
  };
}
