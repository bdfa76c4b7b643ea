import { MAX_STATELESS_CODE_DIGITS } from '../codes/stateless-code.js';
import { MIN_API_KEY_LENGTH } from '../introspection/introspection-api-keys.js';
import type { TimedOtpAuthEvent } from '../events/otp-auth-event.js';
import { compileTrustProxy, type TrustProxy } from '../rate-limits/client-ip.js';
import type { RateLimitFailurePolicy } from '../rate-limits/fallback-rate-limit.storage.js';
import {
  RATE_LIMIT_DEFAULTS,
  type RateLimitOptions,
  type RateLimitRule,
  type RateLimitScopes,
  type SendRateLimitScopes,
} from '../rate-limits/rate-limit-rules.js';
import type { RateLimitStorage } from '../rate-limits/rate-limit-storage.interface.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { RevocationBroadcaster } from '../tokens/revocation-broadcaster.interface.js';
import type {
  AdditionalClaims,
  OtpAuthModuleOptions,
  RefreshTokenDelivery,
  DeliveryOptions,
  TokenEndpointOptions,
  TotpOptions,
} from './otp-auth-options.interface.js';

/** Thrown at startup when the module's options are unusable; the message says how to fix them. */
export class OtpAuthConfigurationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(`OtpAuthModule: ${message}`, options);
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
  readonly codeMode: 'stored' | 'stateless';
  readonly stateless: { readonly window: number; readonly drift: number };
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
    readonly allowedOrigins: readonly string[];
  };
  readonly refreshReuseGracePeriod: number;
  readonly issuer: string;
  readonly audience: string;
  readonly revocationSyncInterval: number;
  readonly revocationBroadcaster: RevocationBroadcaster | undefined;
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
    /** Seconds, or null when enrolment does not look at the sign-in's age. */
    readonly enrollmentMaxAuthAge: number | null;
    readonly required: (user: object) => boolean;
  };
  readonly rateLimits: ResolvedRateLimits;
  readonly delivery: Required<DeliveryOptions>;
  readonly tokenEndpoints: { readonly introspectionApiKeys: readonly string[]; readonly verify: boolean };
  readonly previousSecrets: readonly string[];
  readonly getAdditionalClaims: (user: object) => AdditionalClaims | Promise<AdditionalClaims>;
  readonly clock: () => number;
  readonly onEvent: ((event: TimedOtpAuthEvent) => void | Promise<void>) | undefined;
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

function resolveAllowedOrigins(origins: string[] | undefined): string[] {
  if (origins === undefined) return [];
  const valid = (o: unknown) => typeof o === 'string' && /^https?:\/\/[^/]+$/.test(o) && URL.canParse(o);
  if (!Array.isArray(origins) || !origins.every(valid)) {
    throw new OtpAuthConfigurationError(
      '`cookie.allowedOrigins` must be origins like "https://app.example.com" (scheme and host, no path).',
    );
  }
  // As browsers serialise Origin: lower-case host, default port dropped (https://App.example.com:443).
  return origins.map((origin) => new URL(origin).origin);
}

function resolveBroadcaster(broadcaster: RevocationBroadcaster | undefined): RevocationBroadcaster | undefined {
  if (
    broadcaster !== undefined &&
    (typeof broadcaster?.publish !== 'function' || typeof broadcaster.subscribe !== 'function')
  ) {
    throw new OtpAuthConfigurationError(
      '`revocationBroadcaster` must have `publish(entry)` and `subscribe(handler)`, e.g. `new RedisRevocationBroadcaster({ client })`.',
    );
  }
  return broadcaster;
}

/** Rate-limit settings after defaults. */
export interface ResolvedRateLimits {
  readonly enabled: boolean;
  readonly storage: RateLimitStorage | undefined;
  readonly onStorageError: RateLimitFailurePolicy;
  readonly trustProxy: TrustProxy;
  readonly send: Required<SendRateLimitScopes>;
  readonly verify: Required<RateLimitScopes>;
}

function rule(name: string, value: RateLimitRule | false | undefined, fallback: RateLimitRule): RateLimitRule | false {
  if (value === false) return false;
  const r = value ?? fallback;
  if (r === null || typeof r !== 'object') {
    throw new OtpAuthConfigurationError(`\`${name}\` must be { limit, window } or false.`);
  }
  return {
    limit: integer(`${name}.limit`, r.limit, fallback.limit, 1, 10_000_000),
    window: integer(`${name}.window`, r.window, fallback.window, 1, YEAR),
  };
}

function resolveRateLimits(options: RateLimitOptions = {}): ResolvedRateLimits {
  const policy = options.onStorageError ?? 'local';
  if (!['local', 'fail-closed', 'fail-open'].includes(policy)) {
    throw new OtpAuthConfigurationError(
      `\`rateLimits.onStorageError\` must be 'local', 'fail-closed' or 'fail-open' (got ${String(policy)}).`,
    );
  }
  if (options.storage !== undefined && typeof options.storage?.consume !== 'function') {
    throw new OtpAuthConfigurationError(
      '`rateLimits.storage` must implement RateLimitStorage, e.g. `new RedisRateLimitStorage({ client })` from `nestjs-otp-auth/redis`.',
    );
  }
  const trustProxy = options.trustProxy ?? false;
  try {
    compileTrustProxy(trustProxy);
  } catch (error) {
    throw new OtpAuthConfigurationError(
      `\`rateLimits.trustProxy\` must be false, a hop count or a list of proxy addresses/CIDRs: ${(error as Error).message}`,
    );
  }
  const d = RATE_LIMIT_DEFAULTS;
  const send = options.send ?? {};
  const verify = options.verify ?? {};
  return {
    enabled: options.enabled ?? true,
    storage: options.storage,
    onStorageError: policy,
    trustProxy,
    send: {
      perEmail: rule('rateLimits.send.perEmail', send.perEmail, d.send.perEmail),
      perEmailDaily: rule('rateLimits.send.perEmailDaily', send.perEmailDaily, d.send.perEmailDaily),
      perIp: rule('rateLimits.send.perIp', send.perIp, d.send.perIp),
      global: rule('rateLimits.send.global', send.global, d.send.global),
    },
    verify: {
      perEmail: rule('rateLimits.verify.perEmail', verify.perEmail, d.verify.perEmail),
      perIp: rule('rateLimits.verify.perIp', verify.perIp, d.verify.perIp),
      global: rule('rateLimits.verify.global', verify.global, d.verify.global),
    },
  };
}

function resolveDelivery(options: DeliveryOptions = {}): Required<DeliveryOptions> {
  const mode = options.mode ?? 'inline';
  if (mode !== 'inline' && mode !== 'outbox') {
    throw new OtpAuthConfigurationError(`\`delivery.mode\` must be 'inline' or 'outbox' (got ${String(mode)}).`);
  }
  return {
    mode,
    retries: integer('delivery.retries', options.retries, 3, 0, 20),
    retryDelayMs: integer('delivery.retryDelayMs', options.retryDelayMs, 1000, 1, 600_000),
    concurrency: integer('delivery.concurrency', options.concurrency, 4, 1, 1000),
    maxQueue: integer('delivery.maxQueue', options.maxQueue, 10_000, 1, 10_000_000),
    shutdownGraceMs: integer('delivery.shutdownGraceMs', options.shutdownGraceMs, 5000, 0, 600_000),
  };
}

function resolveTokenEndpoints(options: TokenEndpointOptions = {}): ResolvedOtpAuthOptions['tokenEndpoints'] {
  const keys = options.introspectionApiKeys ?? [];
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string' || k.length < MIN_API_KEY_LENGTH)) {
    throw new OtpAuthConfigurationError(
      `\`tokenEndpoints.introspectionApiKeys\` must be an array of keys of at least ${MIN_API_KEY_LENGTH} characters; generate one with \`openssl rand -hex 32\`.`,
    );
  }
  if (options.verify !== undefined && typeof options.verify !== 'boolean') {
    throw new OtpAuthConfigurationError('`tokenEndpoints.verify` must be true or false.');
  }
  return { introspectionApiKeys: [...keys], verify: options.verify ?? true };
}

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
    enrollmentMaxAuthAge:
      totp.enrollmentMaxAuthAge === false
        ? null
        : integer('totp.enrollmentMaxAuthAge', totp.enrollmentMaxAuthAge, 900, 1, YEAR),
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
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new OtpAuthConfigurationError('`onEvent` must be a function `(event) => void`.');
  }
  const codeMode = options.codeMode ?? 'stored';
  if (codeMode !== 'stored' && codeMode !== 'stateless') {
    throw new OtpAuthConfigurationError(`\`codeMode\` must be 'stored' or 'stateless' (got ${String(codeMode)}).`);
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
    otpLength: integer(
      'otpLength',
      options.otpLength,
      OTP_AUTH_DEFAULTS.otpLength,
      4,
      codeMode === 'stateless' ? MAX_STATELESS_CODE_DIGITS : 10,
    ),
    codeMode,
    stateless: {
      window: integer('stateless.window', options.stateless?.window, 300, 30, 3600),
      drift: integer('stateless.drift', options.stateless?.drift, 1, 0, 5),
    },
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
      allowedOrigins: resolveAllowedOrigins(options.cookie?.allowedOrigins),
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
    revocationBroadcaster: resolveBroadcaster(options.revocationBroadcaster),
    routePrefix: prefix,
    totp: resolveTotp(options.totp),
    tokenEndpoints: resolveTokenEndpoints(options.tokenEndpoints),
    rateLimits: resolveRateLimits(options.rateLimits),
    delivery: resolveDelivery(options.delivery),
    previousSecrets: resolvePreviousSecrets(options.previousSecrets),
    getAdditionalClaims,
    clock: options.clock ?? Date.now,
    onEvent: options.onEvent?.bind(options),
  };
}
