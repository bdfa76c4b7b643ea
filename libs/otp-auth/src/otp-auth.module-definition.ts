import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, ApplicationConfig } from '@nestjs/core';
import { ConsoleOtpSender } from './delivery/console-otp.sender.js';
import { OTP_SENDER, type OtpSender } from './delivery/otp-sender.interface.js';
import { createOtpAuthController } from './routes/otp-auth.controller.js';
import { RetryAfterFilter } from './http/retry-after.filter.js';
import { OtpAuthGlobalGuard } from './guards/otp-auth-global.guard.js';
import { RefreshCookiePathCheck, refreshCookieSettings } from './http/refresh-cookie.js';
import { withStoreAvailability } from './store/store-unavailable.js';
import { createTotpController } from './totp/totp.controller.js';
import { createTokenEndpointController } from './token-endpoints/token-endpoints.controller.js';
import { OTP_AUTH_CONFIG } from './otp-auth.constants.js';
import { otpAuthConfigProviders } from './otp-auth.providers.js';
import type { OtpAuthModuleExtras, OtpAuthModuleOptions } from './options/otp-auth-options.interface.js';
import { OTP_AUTH_DEFAULTS, resolveOtpAuthOptions, type ResolvedOtpAuthOptions } from './options/resolve-options.js';
import { OtpAuthConfigurationError } from './errors.js';

const EXTRAS_DEFAULTS: OtpAuthModuleExtras = {
  isGlobal: false,
  routePrefix: OTP_AUTH_DEFAULTS.routePrefix,
  mountRoutes: true,
  globalGuard: false,
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
    const routesMounted = extras.mountRoutes !== false;
    // forRoot registers the options as a value; forRootAsync as a factory, whose result must not
    // hold the extras (they are read beside the factory, so there they would be ignored).
    const source = (definition.providers ?? []).some(
      (p) => typeof p === 'object' && 'useValue' in p && p.provide === OTP_MODULE_OPTIONS,
    )
      ? 'forRoot'
      : 'factory';
    // Nest's own, in every module; the app sets its global prefix on it after the module is built.
    const appConfig = { token: ApplicationConfig, optional: true };
    const providers: Provider[] = [
      ...(definition.providers ?? []),
      ...(extras.extraProviders ?? []),
      {
        provide: OTP_AUTH_CONFIG,
        inject: [OTP_MODULE_OPTIONS, appConfig],
        useFactory: async (options: OtpAuthModuleOptions, app?: ApplicationConfig): Promise<ResolvedOtpAuthOptions> => {
          const config = resolveOtpAuthOptions(options, routePrefix, process.env, source);
          // Startup sees the driver's own error; requests see 503 while the database is away.
          await config.store.init?.();
          const explicitPath = options.cookie?.path !== undefined;
          return {
            ...config,
            store: withStoreAvailability(config.store),
            cookie: refreshCookieSettings(
              config.cookie,
              { routePrefix: config.routePrefix, explicitPath, routesMounted },
              app,
            ),
          };
        },
      },
      {
        provide: RefreshCookiePathCheck,
        inject: [OTP_MODULE_OPTIONS, OTP_AUTH_CONFIG, appConfig],
        useFactory: (options: OtpAuthModuleOptions, config: ResolvedOtpAuthOptions, app?: ApplicationConfig) =>
          new RefreshCookiePathCheck(config, options.cookie?.path !== undefined, routesMounted, app),
      },
      ...otpAuthConfigProviders(),
      // Global, but it catches only OtpStoreUnavailableException (503 + Retry-After).
      ...((extras.retryAfterFilter ?? extras.storeUnavailableFilter) === false
        ? []
        : [{ provide: APP_FILTER, useClass: RetryAfterFilter }]),
      // The module's own instance (also injectable by the app). Only this guard reads @Public(), which
      // marks the routes that need no token (sign-in, refresh, logout, token endpoints).
      ...(extras.globalGuard === true ? [{ provide: APP_GUARD, useExisting: OtpAuthGlobalGuard }] : []),
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
