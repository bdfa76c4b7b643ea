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
  OtpAuthModuleExtras,
  OtpAuthModuleOptions,
  RefreshCookieOptions,
  RefreshTokenDelivery,
  DeliveryOptions,
  StatelessCodeOptions,
  TokenEndpointOptions,
  TotpOptions,
} from './otp-auth-options.interface.js';
import { OtpAuthConfigurationError } from '../errors.js';

/** Options after defaults and validation; what the services read. */
export interface ResolvedOtpAuthOptions {
  readonly secret: string;
  readonly store: OtpAuthStore;
  readonly developerMode: boolean;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  /** Absolute session lifetime in seconds. */
  readonly sessionMaxAge: number;
  /** Idle timeout in seconds, or null when off. */
  readonly sessionIdleTimeout: number | null;
  readonly otpLength: number;
  readonly codeMode: 'stored' | 'stateless';
  readonly stateless: { readonly window: number; readonly drift: number; readonly multiInstance: boolean };
  readonly otpTtl: number;
  readonly maxAttempts: number;
  readonly resendCooldown: number;
  readonly addressFailureLimit: { readonly max: number; readonly window: number };
  readonly consecutiveFailures: { readonly max: number; readonly backoffAfter: number; readonly window: number };
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
    /** Seconds, or null when `disable` and `backup-codes` do not look at the sign-in's age. */
    readonly managementMaxAuthAge: number | null;
    readonly required: (user: object) => boolean;
  };
  readonly rateLimits: ResolvedRateLimits;
  readonly delivery: ResolvedDeliveryOptions;
  readonly tokenEndpoints: { readonly introspectionApiKeys: readonly string[]; readonly verify: boolean };
  readonly previousSecrets: readonly string[];
  readonly getAdditionalClaims: (user: object) => AdditionalClaims | Promise<AdditionalClaims>;
  readonly clock: () => number;
  readonly onEvent: ((event: TimedOtpAuthEvent) => void | Promise<void>) | undefined;
  /** Seconds between automatic cleanups, or null when they are off. */
  readonly cleanupInterval: number | null;
}

/** {@link DeliveryOptions} after defaults and validation. */
export interface ResolvedDeliveryOptions extends Readonly<
  Required<Omit<DeliveryOptions, 'uniformTiming' | 'recipientLimit'>>
> {
  /** `'auto'` until the module knows its sender: on with `autoCreateUser: false` or a sender that resolves recipients. */
  readonly uniformTiming: boolean | 'auto';
  /** Empty when off. */
  readonly recipientLimit: readonly RateLimitRule[];
}

/** Defaults of the delivery options (documented in {@link DeliveryOptions}). */
export const DELIVERY_DEFAULTS = {
  responseDeadline: 1000,
  // One destination gets no more than one address may (`rateLimits.send.perEmail` / `perEmailDaily`).
  recipientLimit: [
    { limit: 5, window: 600 },
    { limit: 20, window: 86_400 },
  ],
} as const;

/** Defaults, from the original library where they are sound. */
export const OTP_AUTH_DEFAULTS = {
  accessTokenTtl: 3600,
  refreshTokenTtl: 7 * 24 * 3600,
  sessionMaxAge: 30 * 24 * 3600,
  sessionIdleTimeout: false,
  otpLength: 6,
  otpTtl: 600,
  maxAttempts: 5,
  resendCooldown: 60,
  addressFailureLimit: { max: 10, window: 3600 },
  consecutiveFailures: { max: 100, backoffAfter: 10, window: 30 * 24 * 3600 },
  autoCreateUser: true,
  developerMode: false,
  refreshTokenDelivery: 'cookie',
  cookieName: 'otp_refresh',
  refreshReuseGracePeriod: 5,
  issuer: 'nestjs-otp-auth',
  audience: 'nestjs-otp-auth',
  revocationSyncInterval: 1,
  routePrefix: 'auth',
  cleanupInterval: 3600,
} as const;

export const MIN_SECRET_LENGTH = 32;

/** Fewer distinct characters than this and `secret` is refused as a placeholder. */
export const MIN_SECRET_DISTINCT_CHARACTERS = 8;

/**
 * The keys an options object takes: `true` for a value, a nested table for an object whose keys are
 * checked too. Other keys are refused at startup, so a typo (`accessTokenTTL`) fails instead of
 * silently leaving the default in place. The `satisfies` clauses make the compiler demand an entry
 * for every option the interfaces declare.
 */
interface KnownOptionKeys {
  readonly [key: string]: true | KnownOptionKeys;
}

const RATE_LIMIT_RULE_KEYS = { limit: true, window: true } as const satisfies Record<keyof RateLimitRule, true>;

const RATE_LIMIT_SCOPE_KEYS = {
  perEmail: RATE_LIMIT_RULE_KEYS,
  perEmailTotal: RATE_LIMIT_RULE_KEYS,
  perIp: RATE_LIMIT_RULE_KEYS,
  perIpv6Prefix56: RATE_LIMIT_RULE_KEYS,
  perIpv6Prefix48: RATE_LIMIT_RULE_KEYS,
  global: RATE_LIMIT_RULE_KEYS,
} as const satisfies Record<keyof RateLimitScopes, KnownOptionKeys>;

const SEND_RATE_LIMIT_SCOPE_KEYS = {
  ...RATE_LIMIT_SCOPE_KEYS,
  perEmailDaily: RATE_LIMIT_RULE_KEYS,
  perEmailDailyTotal: RATE_LIMIT_RULE_KEYS,
} as const satisfies Record<keyof SendRateLimitScopes, KnownOptionKeys>;

const RATE_LIMIT_KEYS = {
  enabled: true,
  storage: true,
  onStorageError: true,
  trustProxy: true,
  send: SEND_RATE_LIMIT_SCOPE_KEYS,
  verify: RATE_LIMIT_SCOPE_KEYS,
} as const satisfies Record<keyof RateLimitOptions, true | KnownOptionKeys>;

const COOKIE_KEYS = {
  name: true,
  secure: true,
  sameSite: true,
  path: true,
  domain: true,
  allowedOrigins: true,
} as const satisfies Record<keyof RefreshCookieOptions, true>;

const TOTP_KEYS = {
  issuer: true,
  window: true,
  algorithm: true,
  digits: true,
  period: true,
  maxFailures: true,
  failureWindow: true,
  mfaTokenTtl: true,
  mfaMaxAttempts: true,
  backupCodeCount: true,
  enrollmentMaxAuthAge: true,
  managementMaxAuthAge: true,
  required: true,
} as const satisfies Record<keyof TotpOptions, true>;

const DELIVERY_KEYS = {
  mode: true,
  retries: true,
  retryDelayMs: true,
  concurrency: true,
  maxQueue: true,
  shutdownGraceMs: true,
  responseDeadline: true,
  uniformTiming: true,
  // A rule or a list of rules: checked by resolveDelivery.
  recipientLimit: true,
} as const satisfies Record<keyof DeliveryOptions, true>;

const TOKEN_ENDPOINT_KEYS = { introspectionApiKeys: true, verify: true } as const satisfies Record<
  keyof TokenEndpointOptions,
  true
>;

const STATELESS_KEYS = { window: true, drift: true, multiInstance: true } as const satisfies Record<
  keyof StatelessCodeOptions,
  true
>;

const CONSECUTIVE_FAILURES_KEYS = { max: true, backoffAfter: true, window: true } as const satisfies Record<
  keyof NonNullable<OtpAuthModuleOptions['consecutiveFailures']>,
  true
>;

const ADDRESS_FAILURE_LIMIT_KEYS = { max: true, window: true } as const satisfies Record<
  keyof NonNullable<OtpAuthModuleOptions['addressFailureLimit']>,
  true
>;

/** Keys of {@link OtpAuthModuleOptions}, the object given to `forRoot` or returned by a factory. */
const OPTION_KEYS = {
  secret: true,
  store: true,
  sendOtp: true,
  developerMode: true,
  accessTokenTtl: true,
  refreshTokenTtl: true,
  sessionMaxAge: true,
  sessionIdleTimeout: true,
  otpLength: true,
  codeMode: true,
  stateless: STATELESS_KEYS,
  otpTtl: true,
  maxAttempts: true,
  resendCooldown: true,
  addressFailureLimit: ADDRESS_FAILURE_LIMIT_KEYS,
  consecutiveFailures: CONSECUTIVE_FAILURES_KEYS,
  autoCreateUser: true,
  refreshTokenDelivery: true,
  cookie: COOKIE_KEYS,
  refreshReuseGracePeriod: true,
  issuer: true,
  audience: true,
  revocationSyncInterval: true,
  revocationBroadcaster: true,
  getAdditionalClaims: true,
  totp: TOTP_KEYS,
  delivery: DELIVERY_KEYS,
  rateLimits: RATE_LIMIT_KEYS,
  tokenEndpoints: TOKEN_ENDPOINT_KEYS,
  onEvent: true,
  previousSecrets: true,
  clock: true,
  cleanupInterval: true,
} as const satisfies Record<keyof OtpAuthModuleOptions, true | KnownOptionKeys>;

/**
 * Keys of {@link OtpAuthModuleExtras}: read beside the factory when the module is defined, so a
 * factory returning them would be ignored. `forRoot` options legitimately hold them (Nest's builder
 * strips only some of them before the options reach the resolver).
 */
const EXTRA_KEYS = {
  isGlobal: true,
  routePrefix: true,
  mountRoutes: true,
  retryAfterFilter: true,
  storeUnavailableFilter: true,
  sender: true,
  extraProviders: true,
  globalGuard: true,
} as const satisfies Record<keyof OtpAuthModuleExtras, true>;

/** Optimal-string-alignment distance: edits, with a swap of neighbours (`widnow`) counting as one. */
function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d: number[] = [];
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) {
        d[i * width + j] = i + j;
        continue;
      }
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * width + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The known key an unknown one was probably meant to be: same letters in another case, else a near spelling. */
function closestKey(key: string, candidates: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const caseVariant = candidates.find((candidate) => candidate.toLowerCase() === lower);
  if (caseVariant !== undefined) return caseVariant;
  // Short keys get less slack, so `max` does not suggest an unrelated three-letter key.
  let bestDistance = lower.length <= 4 ? 1 : lower.length <= 8 ? 2 : 3;
  let best: string | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= bestDistance && (best === undefined || distance < bestDistance)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function unknownOption(path: string, key: string, candidates: readonly string[]): OtpAuthConfigurationError {
  const name = path === '' ? key : `${path}.${key}`;
  const match = closestKey(key, candidates);
  if (match !== undefined) {
    const suggested = path === '' ? match : `${path}.${match}`;
    return new OtpAuthConfigurationError(`unknown option \`${name}\`; did you mean \`${suggested}\`?`);
  }
  return new OtpAuthConfigurationError(
    path === ''
      ? `unknown option \`${name}\` (the options are listed under "Configuration reference" in the README).`
      : `unknown option \`${name}\`; \`${path}\` takes ${candidates.map((c) => `\`${c}\``).join(', ')}.`,
  );
}

/**
 * Keys of an options object that must be known: its own enumerable keys, and, when it is a class
 * instance (or has another prototype), the prototype members whose names are close to an option
 * (a getter `accesTokenTtl`, a method `onEvnt`): those are typos, while helper methods of an options
 * class with other names are left alone.
 */
function keysToCheck(value: object, candidates: readonly string[]): string[] {
  const keys = Object.keys(value);
  for (let proto: unknown = Object.getPrototypeOf(value); proto !== null && proto !== Object.prototype;) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || candidates.includes(name) || keys.includes(name)) continue;
      if (closestKey(name, candidates) !== undefined) keys.push(name);
    }
    proto = Object.getPrototypeOf(proto);
  }
  return keys;
}

/** Refuses keys a nested options object does not take, and values that are not objects at all. */
function checkNestedKeys(value: unknown, table: KnownOptionKeys, path: string): void {
  if (value === undefined || value === false) return; // defaults, or a rule switched off
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OtpAuthConfigurationError(
      `\`${path}\` must be an object with ${Object.keys(table)
        .map((c) => `\`${c}\``)
        .join(', ')} (got ${Array.isArray(value) ? 'an array' : String(value)}).`,
    );
  }
  for (const key of keysToCheck(value, Object.keys(table))) {
    const known = Object.hasOwn(table, key) ? table[key] : undefined;
    if (known === undefined) throw unknownOption(path, key, Object.keys(table));
    if (known !== true) checkNestedKeys((value as Record<string, unknown>)[key], known, `${path}.${key}`);
  }
}

function checkOptionKeys(options: object, source: 'forRoot' | 'factory'): void {
  const candidates = [...Object.keys(OPTION_KEYS), ...Object.keys(EXTRA_KEYS)];
  if (Array.isArray(options)) {
    throw new OtpAuthConfigurationError('options must be an object such as `{ secret, store }`, not an array.');
  }
  const values = options as Record<string, unknown>;
  for (const key of keysToCheck(options, candidates)) {
    if (Object.hasOwn(EXTRA_KEYS, key)) {
      if (source === 'factory' && values[key] !== undefined) {
        throw new OtpAuthConfigurationError(
          `\`${key}\` is a definition-time option: pass it to forRootAsync({ ${key}, useFactory }) beside the factory, not in the object the factory returns.`,
        );
      }
      continue;
    }
    const known: true | KnownOptionKeys | undefined = Object.hasOwn(OPTION_KEYS, key)
      ? (OPTION_KEYS as KnownOptionKeys)[key]
      : undefined;
    if (known === undefined) throw unknownOption('', key, candidates);
    if (known !== true) checkNestedKeys(values[key], known, key);
  }
}

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

/** An explicit max age below `refreshTokenTtl` is a mistake; the default just caps the tokens. */
function resolveSessionMaxAge(value: number | undefined, refreshTokenTtl: number): number {
  const maxAge = integer('sessionMaxAge', value, OTP_AUTH_DEFAULTS.sessionMaxAge, 60, YEAR);
  if (value !== undefined && maxAge < refreshTokenTtl) {
    throw new OtpAuthConfigurationError(
      `\`sessionMaxAge\` (${maxAge}) is shorter than \`refreshTokenTtl\` (${refreshTokenTtl}); raise it or lower \`refreshTokenTtl\`.`,
    );
  }
  return maxAge;
}

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

/** `stateless.multiInstance`: an explicit boolean wins; else a revocation broadcaster implies several instances. */
function resolveMultiInstance(value: boolean | undefined, broadcaster: RevocationBroadcaster | undefined): boolean {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new OtpAuthConfigurationError(`\`stateless.multiInstance\` must be true or false (got ${String(value)}).`);
  }
  return value ?? broadcaster !== undefined;
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
      perEmailTotal: rule('rateLimits.send.perEmailTotal', send.perEmailTotal, d.send.perEmailTotal),
      perEmailDailyTotal: rule(
        'rateLimits.send.perEmailDailyTotal',
        send.perEmailDailyTotal,
        d.send.perEmailDailyTotal,
      ),
      perIp: rule('rateLimits.send.perIp', send.perIp, d.send.perIp),
      perIpv6Prefix56: rule('rateLimits.send.perIpv6Prefix56', send.perIpv6Prefix56, d.send.perIpv6Prefix56),
      perIpv6Prefix48: rule('rateLimits.send.perIpv6Prefix48', send.perIpv6Prefix48, d.send.perIpv6Prefix48),
      global: rule('rateLimits.send.global', send.global, d.send.global),
    },
    verify: {
      perEmail: rule('rateLimits.verify.perEmail', verify.perEmail, d.verify.perEmail),
      perEmailTotal: rule('rateLimits.verify.perEmailTotal', verify.perEmailTotal, d.verify.perEmailTotal),
      perIp: rule('rateLimits.verify.perIp', verify.perIp, d.verify.perIp),
      perIpv6Prefix56: rule('rateLimits.verify.perIpv6Prefix56', verify.perIpv6Prefix56, d.verify.perIpv6Prefix56),
      perIpv6Prefix48: rule('rateLimits.verify.perIpv6Prefix48', verify.perIpv6Prefix48, d.verify.perIpv6Prefix48),
      global: rule('rateLimits.verify.global', verify.global, d.verify.global),
    },
  };
}

/** `delivery.recipientLimit`: one rule, several, or false (none). */
function resolveRecipientLimit(value: DeliveryOptions['recipientLimit']): RateLimitRule[] {
  const name = 'delivery.recipientLimit';
  if (value === false) return [];
  if (value === undefined) return DELIVERY_DEFAULTS.recipientLimit.map((r) => ({ ...r }));
  const rules: readonly RateLimitRule[] = Array.isArray(value) ? value : [value];
  if (value === null || typeof value !== 'object' || rules.length === 0) {
    throw new OtpAuthConfigurationError(
      `\`${name}\` must be { limit, window } (window in seconds), a non-empty list of them, or false (got ${Array.isArray(value) ? '[]' : String(value)}).`,
    );
  }
  return rules.map((r, i) => {
    const at = Array.isArray(value) ? `${name}[${i}]` : name;
    if (r === null || typeof r !== 'object') {
      throw new OtpAuthConfigurationError(`\`${at}\` must be { limit, window } (window in seconds).`);
    }
    for (const key of Object.keys(r)) {
      if (key !== 'limit' && key !== 'window') throw unknownOption(at, key, ['limit', 'window']);
    }
    return {
      limit: integer(`${at}.limit`, r.limit, r.limit, 1, 10_000_000),
      window: integer(`${at}.window`, r.window, r.window, 1, YEAR),
    };
  });
}

function resolveDelivery(options: DeliveryOptions = {}): ResolvedDeliveryOptions {
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
    responseDeadline: resolveResponseDeadline(options.responseDeadline),
    uniformTiming: resolveUniformTiming(options.uniformTiming),
    recipientLimit: resolveRecipientLimit(options.recipientLimit),
  };
}

function resolveResponseDeadline(value: number | undefined): number {
  const deadline = value ?? DELIVERY_DEFAULTS.responseDeadline;
  if (typeof deadline !== 'number' || !Number.isInteger(deadline) || deadline < 1 || deadline > 60_000) {
    throw new OtpAuthConfigurationError(
      `\`delivery.responseDeadline\` must be a whole number of milliseconds from 1 to 60000 (got ${String(deadline)}): ` +
        `the time at which request-otp answers every address when responses are uniformly timed; e.g. 1000 for one second, above your provider's usual latency.`,
    );
  }
  return deadline;
}

function resolveUniformTiming(value: boolean | undefined): boolean | 'auto' {
  if (value === undefined) return 'auto';
  if (typeof value !== 'boolean') {
    throw new OtpAuthConfigurationError(
      `\`delivery.uniformTiming\` must be true, false or left out (automatic: on with \`autoCreateUser: false\` or a sender that resolves recipients) (got ${String(value)}).`,
    );
  }
  return value;
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
  const enrollmentMaxAuthAge =
    totp.enrollmentMaxAuthAge === false
      ? null
      : integer('totp.enrollmentMaxAuthAge', totp.enrollmentMaxAuthAge, 900, 1, YEAR);
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
    enrollmentMaxAuthAge,
    // Follows enrolment unless set: an app that turned that check off expects this one off too.
    managementMaxAuthAge:
      totp.managementMaxAuthAge === false
        ? null
        : totp.managementMaxAuthAge === undefined
          ? enrollmentMaxAuthAge
          : integer('totp.managementMaxAuthAge', totp.managementMaxAuthAge, 900, 1, YEAR),
    required: totp.required?.bind(totp) ?? (() => false),
  };
}

/**
 * Validates options and fills in defaults. Every mistake fails here, at startup, with a
 * message that names the option and how to fix it; unknown keys too (with the nearest known one).
 *
 * @param options - The options given to `forRoot`, or returned by the `forRootAsync` factory.
 * @param routePrefix - The definition-time `routePrefix`.
 * @param env - Read for `NODE_ENV`.
 * @param source - `factory` when `options` came from a `forRootAsync` factory (or options class):
 *   definition-time options (`routePrefix`, `sender`, ...) are then refused, since they would be
 *   ignored there. `forRoot` options may hold them.
 */
export function resolveOtpAuthOptions(
  options: OtpAuthModuleOptions,
  routePrefix: string = OTP_AUTH_DEFAULTS.routePrefix,
  env: NodeJS.ProcessEnv = process.env,
  source: 'forRoot' | 'factory' = 'forRoot',
): ResolvedOtpAuthOptions {
  if (options === null || typeof options !== 'object') {
    throw new OtpAuthConfigurationError('options are missing; pass at least `secret` and `store`.');
  }
  checkOptionKeys(options, source);
  const developerMode = options.developerMode ?? OTP_AUTH_DEFAULTS.developerMode;
  // Matched loosely: `Production` must not let developer mode through.
  if (developerMode && env['NODE_ENV']?.trim().toLowerCase() === 'production') {
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
  // A placeholder such as 'x'.repeat(32) passes the length rule but is guessable; 64 random hex
  // digits hold about 16 distinct characters, and fewer than 8 happens by chance essentially never.
  const distinct = new Set(secret).size;
  if (!developerMode && distinct < MIN_SECRET_DISTINCT_CHARACTERS) {
    throw new OtpAuthConfigurationError(
      `\`secret\` looks like a placeholder: it has only ${distinct} distinct character${distinct === 1 ? '' : 's'}. Generate one with \`openssl rand -hex 32\`.`,
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
  const streak = options.consecutiveFailures ?? {};
  if (streak === null || typeof streak !== 'object') {
    throw new OtpAuthConfigurationError(
      '`consecutiveFailures` must be an object with `max`, `backoffAfter`, `window`.',
    );
  }
  const streakDefaults = OTP_AUTH_DEFAULTS.consecutiveFailures;
  const consecutiveFailures = {
    max: integer('consecutiveFailures.max', streak.max, streakDefaults.max, 1, 100_000),
    backoffAfter: integer(
      'consecutiveFailures.backoffAfter',
      streak.backoffAfter,
      streakDefaults.backoffAfter,
      0,
      100_000,
    ),
    window: integer('consecutiveFailures.window', streak.window, streakDefaults.window, 60, YEAR),
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
  const refreshTokenTtl = integer(
    'refreshTokenTtl',
    options.refreshTokenTtl,
    OTP_AUTH_DEFAULTS.refreshTokenTtl,
    60,
    YEAR,
  );
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
    refreshTokenTtl,
    sessionMaxAge: resolveSessionMaxAge(options.sessionMaxAge, refreshTokenTtl),
    sessionIdleTimeout:
      options.sessionIdleTimeout === false || options.sessionIdleTimeout === undefined
        ? null
        : integer('sessionIdleTimeout', options.sessionIdleTimeout, 0, 60, YEAR),
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
      multiInstance: resolveMultiInstance(options.stateless?.multiInstance, options.revocationBroadcaster),
    },
    otpTtl: integer('otpTtl', options.otpTtl, OTP_AUTH_DEFAULTS.otpTtl, 1, 24 * 3600),
    maxAttempts,
    resendCooldown: integer('resendCooldown', options.resendCooldown, OTP_AUTH_DEFAULTS.resendCooldown, 0, 24 * 3600),
    addressFailureLimit,
    consecutiveFailures,
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
    cleanupInterval:
      options.cleanupInterval === false
        ? null
        : integer('cleanupInterval', options.cleanupInterval, OTP_AUTH_DEFAULTS.cleanupInterval, 60, 7 * 24 * 3600),
  };
}
