import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { SecretKeys } from './crypto/secret-keys.js';
import { ConsoleOtpSender } from './delivery/console-otp.sender.js';
import { OTP_SENDER, type OtpSender } from './delivery/otp-sender.interface.js';
import { createOtpAuthController } from './http/otp-auth.controller.js';
import { StoreUnavailableFilter } from './http/store-unavailable.filter.js';
import { withStoreAvailability } from './store/store-unavailable.js';
import { createTotpController } from './totp/totp.controller.js';
import { createTokenEndpointController } from './introspection/token-endpoints.controller.js';
import { OTP_AUTH_CONFIG } from './otp-auth.constants.js';
import type { OtpAuthModuleExtras, OtpAuthModuleOptions } from './options/otp-auth-options.interface.js';
import {
  OtpAuthConfigurationError,
  OTP_AUTH_DEFAULTS,
  resolveOtpAuthOptions,
  type ResolvedOtpAuthOptions,
} from './options/resolve-options.js';

const EXTRAS_DEFAULTS: OtpAuthModuleExtras = {
  isGlobal: false,
  routePrefix: OTP_AUTH_DEFAULTS.routePrefix,
  mountRoutes: true,
};

function senderProvider(senderClass: OtpAuthModuleExtras['sender']): Provider {
  return {
    provide: OTP_SENDER,
    inject: [OTP_MODULE_OPTIONS, OTP_AUTH_CONFIG, ...(senderClass ? [senderClass] : [])],
    useFactory: (options: OtpAuthModuleOptions, config: ResolvedOtpAuthOptions, injected?: OtpSender): OtpSender => {
      if (options.sendOtp && injected) {
        throw new OtpAuthConfigurationError('give either `sendOtp` or a `sender` class, not both.');
      }
      if (options.sendOtp) {
        if (typeof options.sendOtp !== 'function')
          throw new OtpAuthConfigurationError('`sendOtp` must be an async function.');
        const send = options.sendOtp;
        return { send: (email, code, context) => send(email, code, context) };
      }
      if (injected) return injected;
      if (config.developerMode) return new ConsoleOtpSender();
      throw new OtpAuthConfigurationError(
        'no delivery: pass `sendOtp: async (email, code, context) => ...` or `sender: YourSenderClass` (see ConsoleOtpSender, WebhookOtpSender).',
      );
    },
  };
}

export const {
  ConfigurableModuleClass: ConfigurableOtpAuthModule,
  MODULE_OPTIONS_TOKEN: OTP_MODULE_OPTIONS,
  OPTIONS_TYPE: OTP_AUTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: OTP_AUTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<OtpAuthModuleOptions>({ moduleName: 'OtpAuth' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createOtpAuthOptions')
  .setExtras<OtpAuthModuleExtras>(EXTRAS_DEFAULTS, (definition, extras) => {
    const routePrefix = extras.routePrefix ?? OTP_AUTH_DEFAULTS.routePrefix;
    const providers: Provider[] = [
      ...(definition.providers ?? []),
      ...(extras.extraProviders ?? []),
      {
        provide: OTP_AUTH_CONFIG,
        inject: [OTP_MODULE_OPTIONS],
        useFactory: async (options: OtpAuthModuleOptions): Promise<ResolvedOtpAuthOptions> => {
          const config = resolveOtpAuthOptions(options, routePrefix);
          // Startup sees the driver's own error; requests see 503 while the database is away.
          await config.store.init?.();
          return { ...config, store: withStoreAvailability(config.store) };
        },
      },
      {
        provide: SecretKeys,
        inject: [OTP_AUTH_CONFIG],
        useFactory: (c: ResolvedOtpAuthOptions) => new SecretKeys(c.secret),
      },
      // Global, but it catches only OtpStoreUnavailableException (503 + Retry-After).
      ...(extras.storeUnavailableFilter === false ? [] : [{ provide: APP_FILTER, useClass: StoreUnavailableFilter }]),
      ...(extras.sender ? [extras.sender] : []),
      senderProvider(extras.sender),
    ];
    return {
      ...definition,
      global: extras.isGlobal ?? false,
      providers,
      controllers:
        extras.mountRoutes === false
          ? []
          : [
              createOtpAuthController(routePrefix),
              createTotpController(routePrefix),
              createTokenEndpointController(routePrefix),
            ],
    };
  })
  .build();
