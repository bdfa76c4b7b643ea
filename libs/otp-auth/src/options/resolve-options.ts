import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type {
  AdditionalClaims,
  OtpAuthModuleOptions,
  RefreshTokenDelivery,
  TotpOptions,
} from './otp-auth-options.interface.js';

/** Thrown at startup when the module's options are unusable; the message says how to fix them. */
export class OtpAuthConfigurationError extends Error {
  constructor(message: string) {
    super(`OtpAuthModule: ${message}`);
    this.name = 'OtpAuthConfigurationError';
  }
}

/** Options after defaults and validation; what the services read. */
export interface ResolvedOtpAuthOptions {
  readonly secret: string;
  readonly store: OtpAuthStore;
  readonly developerMode: boolean;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  readonly otpLength: number;
  readonly otpTtl: number;
  readonly maxAttempts: number;
  readonly resendCooldown: number;
  readonly addressFailureLimit: { readonly max: number; readonly window: number };
  readonly autoCreateUser: boolean;
  readonly refreshTokenDelivery: RefreshTokenDelivery;
  readonly cookie: {
    readonly name: string;
    readonly secure: boolean;
    readonly sameSite: 'strict' | 'lax' | 'none';
    readonly path: string;
    readonly domain: string | undefined;
  };
  readonly refreshReuseGracePeriod: number;
  readonly issuer: string;
  readonly audience: string;
  readonly revocationSyncInterval: number;
  readonly routePrefix: string;
  readonly totp: {
    readonly issuer: string;
    readonly window: number;
    readonly algorithm: 'SHA1' | 'SHA256' | 'SHA512';
    readonly digits: 6 | 8;
    readonly period: number;
    readonly maxFailures: number;
    readonly failureWindow: number;
    readonly mfaTokenTtl: number;
    readonly mfaMaxAttempts: number;
    readonly backupCodeCount: number;
    readonly required: (user: object) => boolean;
  };
  readonly previousSecrets: readonly string[];
  readonly getAdditionalClaims: (user: object) => AdditionalClaims | Promise<AdditionalClaims>;
  readonly clock: () => number;
}

/** Defaults, from the original library where they are sound. */
export const OTP_AUTH_DEFAULTS = {
  accessTokenTtl: 3600,
  refreshTokenTtl: 7 * 24 * 3600,
  otpLength: 6,
  otpTtl: 600,
  maxAttempts: 5,
  resendCooldown: 60,
  addressFailureLimit: { max: 10, window: 3600 },
  autoCreateUser: true,
  developerMode: false,
  refreshTokenDelivery: 'cookie',
  cookieName: 'otp_refresh',
  refreshReuseGracePeriod: 5,
  issuer: 'nestjs-otp-auth',
  audience: 'nestjs-otp-auth',
  revocationSyncInterval: 1,
  routePrefix: 'auth',
} as const;

export const MIN_SECRET_LENGTH = 32;

function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OtpAuthConfigurationError(`\`${name}\` must be an integer from ${min} to ${max} (got ${String(v)}).`);
  }
  return v;
}

function resolvePreviousSecrets(secrets: string[] | undefined): string[] {
  if (secrets === undefined) return [];
  if (!Array.isArray(secrets) || secrets.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new OtpAuthConfigurationError('`previousSecrets` must be an array of non-empty strings.');
  }
  return [...secrets];
}

function nonEmpty(name: string, value: string | undefined, fallback: string): string {
  const v = value ?? fallback;
  if (typeof v !== 'string' || v.trim() === '') {
    throw new OtpAuthConfigurationError(`\`${name}\` must be a non-empty string.`);
  }
  return v;
}

const YEAR = 366 * 24 * 3600;

function resolveTotp(totp: TotpOptions = {}): ResolvedOtpAuthOptions['totp'] {
  const issuer = nonEmpty('totp.issuer', totp.issuer, OTP_AUTH_DEFAULTS.issuer);
  if (issuer.includes(':')) {
    throw new OtpAuthConfigurationError(
      '`totp.issuer` may not contain `:` (the key URI uses it to separate issuer and account).',
    );
  }
  const algorithm = totp.algorithm ?? 'SHA1';
  if (!['SHA1', 'SHA256', 'SHA512'].includes(algorithm)) {
    throw new OtpAuthConfigurationError(
      `\`totp.algorithm\` must be 'SHA1', 'SHA256' or 'SHA512' (got ${String(algorithm)}).`,
    );
  }
  const digits = totp.digits ?? 6;
  if (digits !== 6 && digits !== 8) {
    throw new OtpAuthConfigurationError(`\`totp.digits\` must be 6 or 8 (got ${String(digits)}).`);
  }
  if (totp.required !== undefined && typeof totp.required !== 'function') {
    throw new OtpAuthConfigurationError('`totp.required` must be a function `(user) => boolean`.');
  }
  return {
    issuer,
    window: integer('totp.window', totp.window, 1, 0, 10),
    algorithm,
    digits,
    period: integer('totp.period', totp.period, 30, 15, 300),
    maxFailures: integer('totp.maxFailures', totp.maxFailures, 10, 1, 10_000),
    failureWindow: integer('totp.failureWindow', totp.failureWindow, 900, 1, YEAR),
    mfaTokenTtl: integer('totp.mfaTokenTtl', totp.mfaTokenTtl, 300, 30, 3600),
    mfaMaxAttempts: integer('totp.mfaMaxAttempts', totp.mfaMaxAttempts, 5, 1, 100),
    backupCodeCount: integer('totp.backupCodeCount', totp.backupCodeCount, 10, 1, 50),
    required: totp.required?.bind(totp) ?? (() => false),
  };
}

/**
 * Validates options and fills in defaults. Every mistake fails here, at startup, with a
 * message that names the option and how to fix it.
 */
export function resolveOtpAuthOptions(
  options: OtpAuthModuleOptions,
  routePrefix: string = OTP_AUTH_DEFAULTS.routePrefix,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOtpAuthOptions {
  if (options === null || typeof options !== 'object') {
    throw new OtpAuthConfigurationError('options are missing; pass at least `secret` and `store`.');
  }
  const developerMode = options.developerMode ?? OTP_AUTH_DEFAULTS.developerMode;
  if (developerMode && env['NODE_ENV'] === 'production') {
    throw new OtpAuthConfigurationError(
      '`developerMode` is on while NODE_ENV=production. Developer mode makes every code 000000; turn it off.',
    );
  }
  const secret = options.secret;
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new OtpAuthConfigurationError(
      '`secret` is required. Generate one with `openssl rand -hex 32` and pass it (e.g. from OTP_AUTH_SECRET).',
    );
  }
  if (!developerMode && secret.length < MIN_SECRET_LENGTH) {
    throw new OtpAuthConfigurationError(
      `\`secret\` must be at least ${MIN_SECRET_LENGTH} characters (got ${secret.length}). Generate one with \`openssl rand -hex 32\`.`,
    );
  }
  const store = options.store;
  if (!store || typeof store.findCode !== 'function' || typeof store.insertSuccessor !== 'function') {
    throw new OtpAuthConfigurationError(
      '`store` is required: e.g. `new TypeOrmOtpAuthStore(dataSource, { userEntity: User })` from `nestjs-otp-auth/typeorm`.',
    );
  }
  const delivery = options.refreshTokenDelivery ?? OTP_AUTH_DEFAULTS.refreshTokenDelivery;
  if (!['cookie', 'body', 'both'].includes(delivery)) {
    throw new OtpAuthConfigurationError(
      `\`refreshTokenDelivery\` must be 'cookie', 'body' or 'both' (got ${String(delivery)}).`,
    );
  }
  const sameSite = options.cookie?.sameSite ?? 'strict';
  if (!['strict', 'lax', 'none'].includes(sameSite)) {
    throw new OtpAuthConfigurationError(
      `\`cookie.sameSite\` must be 'strict', 'lax' or 'none' (got ${String(sameSite)}).`,
    );
  }
  const secure = options.cookie?.secure ?? true;
  if (sameSite === 'none' && !secure) {
    throw new OtpAuthConfigurationError(
      '`cookie.sameSite: none` requires `cookie.secure: true`; browsers drop such cookies.',
    );
  }
  const prefix = nonEmpty('routePrefix', routePrefix, OTP_AUTH_DEFAULTS.routePrefix).replace(/^\/+|\/+$/g, '');
  const limit = options.addressFailureLimit ?? OTP_AUTH_DEFAULTS.addressFailureLimit;
  const maxAttempts = integer('maxAttempts', options.maxAttempts, OTP_AUTH_DEFAULTS.maxAttempts, 1, 100);
  const addressFailureLimit = {
    max: integer('addressFailureLimit.max', limit.max, OTP_AUTH_DEFAULTS.addressFailureLimit.max, 1, 10_000),
    window: integer('addressFailureLimit.window', limit.window, OTP_AUTH_DEFAULTS.addressFailureLimit.window, 1, YEAR),
  };
  if (options.getAdditionalClaims !== undefined && typeof options.getAdditionalClaims !== 'function') {
    throw new OtpAuthConfigurationError('`getAdditionalClaims` must be a function `(user) => claims`.');
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new OtpAuthConfigurationError('`clock` must be a function returning epoch milliseconds.');
  }
  const getAdditionalClaims = options.getAdditionalClaims?.bind(options) ?? (() => ({}));
  return {
    secret,
    store,
    developerMode,
    accessTokenTtl: integer(
      'accessTokenTtl',
      options.accessTokenTtl,
      OTP_AUTH_DEFAULTS.accessTokenTtl,
      10,
      7 * 24 * 3600,
    ),
    refreshTokenTtl: integer('refreshTokenTtl', options.refreshTokenTtl, OTP_AUTH_DEFAULTS.refreshTokenTtl, 60, YEAR),
    otpLength: integer('otpLength', options.otpLength, OTP_AUTH_DEFAULTS.otpLength, 4, 10),
    otpTtl: integer('otpTtl', options.otpTtl, OTP_AUTH_DEFAULTS.otpTtl, 1, 24 * 3600),
    maxAttempts,
    resendCooldown: integer('resendCooldown', options.resendCooldown, OTP_AUTH_DEFAULTS.resendCooldown, 0, 24 * 3600),
    addressFailureLimit,
    autoCreateUser: options.autoCreateUser ?? OTP_AUTH_DEFAULTS.autoCreateUser,
    refreshTokenDelivery: delivery,
    cookie: {
      // The __Secure- prefix stops non-HTTPS pages and sibling subdomains over HTTP from setting it.
      name: nonEmpty(
        'cookie.name',
        options.cookie?.name,
        secure ? `__Secure-${OTP_AUTH_DEFAULTS.cookieName}` : OTP_AUTH_DEFAULTS.cookieName,
      ),
      secure,
      sameSite,
      path: nonEmpty('cookie.path', options.cookie?.path, `/${prefix}`),
      domain: options.cookie?.domain,
    },
    refreshReuseGracePeriod: integer(
      'refreshReuseGracePeriod',
      options.refreshReuseGracePeriod,
      OTP_AUTH_DEFAULTS.refreshReuseGracePeriod,
      0,
      30,
    ),
    issuer: nonEmpty('issuer', options.issuer, OTP_AUTH_DEFAULTS.issuer),
    audience: nonEmpty('audience', options.audience, OTP_AUTH_DEFAULTS.audience),
    revocationSyncInterval: integer(
      'revocationSyncInterval',
      options.revocationSyncInterval,
      OTP_AUTH_DEFAULTS.revocationSyncInterval,
      1,
      3600,
    ),
    routePrefix: prefix,
    totp: resolveTotp(options.totp),
    previousSecrets: resolvePreviousSecrets(options.previousSecrets),
    getAdditionalClaims,
    clock: options.clock ?? Date.now,
  };
}
