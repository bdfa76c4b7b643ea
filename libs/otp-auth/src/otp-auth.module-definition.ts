import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import { SecretKeys } from './crypto/secret-keys.js';
import { ConsoleOtpSender } from './delivery/console-otp.sender.js';
import { OTP_SENDER, type OtpSender } from './delivery/otp-sender.interface.js';
import { createOtpAuthController } from './http/otp-auth.controller.js';
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
          await config.store.init?.();
          return config;
        },
      },
      {
        provide: SecretKeys,
        inject: [OTP_AUTH_CONFIG],
        useFactory: (c: ResolvedOtpAuthOptions) => new SecretKeys(c.secret),
      },
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
