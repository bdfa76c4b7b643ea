import {
  CODE_DEFAULTS,
  CODE_OPTION_KEYS,
  resolveCodeOptions,
  type ResolvedCodeOptions,
} from '../codes/code.options.js';
import { DELIVERY_KEYS, resolveDelivery, type ResolvedDeliveryOptions } from '../delivery/delivery.options.js';
import { OtpAuthConfigurationError } from '../errors.js';
import type { TimedOtpAuthEvent } from '../events/otp-auth-event.js';
import {
  REFRESH_TRANSPORT_DEFAULTS,
  REFRESH_TRANSPORT_OPTION_KEYS,
  resolveRefreshTransport,
  type ResolvedRefreshTransport,
} from '../http/refresh-transport.options.js';
import {
  resolveTokenEndpoints,
  TOKEN_ENDPOINT_KEYS,
  type ResolvedTokenEndpointOptions,
} from '../token-endpoints/token-endpoint.options.js';
import { CLEANUP_INTERVAL_DEFAULT, resolveCleanupInterval } from '../maintenance/cleanup.options.js';
import { checkNestedKeys, keysToCheck, nonEmpty, unknownOption, type KnownOptionKeys } from '../option-checks.js';
import { RATE_LIMIT_KEYS, resolveRateLimits, type ResolvedRateLimits } from '../rate-limits/rate-limit.options.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import {
  resolveTokenOptions,
  TOKEN_DEFAULTS,
  TOKEN_OPTION_KEYS,
  type ResolvedTokenOptions,
} from '../tokens/token.options.js';
import { resolveTotpOptions, TOTP_KEYS, type ResolvedTotpOptions } from '../totp/totp.options.js';
import type { OtpAuthModuleExtras, OtpAuthModuleOptions } from './otp-auth-options.interface.js';

/**
 * Options after defaults and validation: what the module's providers split into the slices each
 * feature reads (`CodeConfig`, `TokenConfig`, ...). Only the module and the key holders see all of it.
 */
export interface ResolvedOtpAuthOptions extends ResolvedCodeOptions, ResolvedTokenOptions, ResolvedRefreshTransport {
  readonly secret: string;
  readonly store: OtpAuthStore;
  readonly routePrefix: string;
  readonly totp: ResolvedTotpOptions;
  readonly rateLimits: ResolvedRateLimits;
  readonly delivery: ResolvedDeliveryOptions;
  readonly tokenEndpoints: ResolvedTokenEndpointOptions;
  readonly previousSecrets: readonly string[];
  readonly clock: () => number;
  readonly onEvent: ((event: TimedOtpAuthEvent) => void | Promise<void>) | undefined;
  /** Seconds between automatic cleanups, or null when they are off. */
  readonly cleanupInterval: number | null;
}

/** Defaults of the top-level options, composed from each feature's (`CODE_DEFAULTS`, `TOKEN_DEFAULTS`, ...). */
export const OTP_AUTH_DEFAULTS = {
  ...TOKEN_DEFAULTS,
  ...CODE_DEFAULTS,
  refreshTokenDelivery: REFRESH_TRANSPORT_DEFAULTS.refreshTokenDelivery,
  cookieName: REFRESH_TRANSPORT_DEFAULTS.cookieName,
  routePrefix: 'auth',
  cleanupInterval: CLEANUP_INTERVAL_DEFAULT,
} as const;

export const MIN_SECRET_LENGTH = 32;

/** Fewer distinct characters than this and `secret` is refused as a placeholder. */
export const MIN_SECRET_DISTINCT_CHARACTERS = 8;

/**
 * Keys of {@link OtpAuthModuleOptions}, the object given to `forRoot` or returned by a factory:
 * each feature's own table, composed. Other keys are refused at startup, so a typo
 * (`accessTokenTTL`) fails instead of silently leaving the default in place; the `satisfies`
 * clause makes the compiler demand an entry for every option the interfaces declare.
 */
const OPTION_KEYS = {
  ...CODE_OPTION_KEYS,
  ...TOKEN_OPTION_KEYS,
  ...REFRESH_TRANSPORT_OPTION_KEYS,
  secret: true,
  store: true,
  sendOtp: true,
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

function resolvePreviousSecrets(secrets: string[] | undefined): string[] {
  if (secrets === undefined) return [];
  if (!Array.isArray(secrets) || secrets.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new OtpAuthConfigurationError('`previousSecrets` must be an array of non-empty strings.');
  }
  return [...secrets];
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
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new OtpAuthConfigurationError('`clock` must be a function returning epoch milliseconds.');
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new OtpAuthConfigurationError('`onEvent` must be a function `(event) => void`.');
  }
  const prefix = nonEmpty('routePrefix', routePrefix, OTP_AUTH_DEFAULTS.routePrefix).replace(/^\/+|\/+$/g, '');
  const tokens = resolveTokenOptions(options);
  return {
    secret,
    store,
    ...resolveCodeOptions(options, tokens.revocationBroadcaster !== undefined),
    developerMode,
    ...tokens,
    ...resolveRefreshTransport(options, prefix),
    routePrefix: prefix,
    totp: resolveTotpOptions(options.totp),
    tokenEndpoints: resolveTokenEndpoints(options.tokenEndpoints),
    rateLimits: resolveRateLimits(options.rateLimits),
    delivery: resolveDelivery(options.delivery),
    previousSecrets: resolvePreviousSecrets(options.previousSecrets),
    clock: options.clock ?? Date.now,
    onEvent: options.onEvent?.bind(options),
    cleanupInterval: resolveCleanupInterval(options.cleanupInterval),
  };
}
