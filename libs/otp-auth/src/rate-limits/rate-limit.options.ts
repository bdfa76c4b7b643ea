import { OtpAuthConfigurationError } from '../errors.js';
import { integer, YEAR, type KnownOptionKeys } from '../option-checks.js';
import { compileTrustProxy, type TrustProxy } from './client-ip.js';
import type { RateLimitFailurePolicy } from './fallback-rate-limit.storage.js';
import {
  RATE_LIMIT_DEFAULTS,
  type RateLimitOptions,
  type RateLimitRule,
  type RateLimitScopes,
  type SendRateLimitScopes,
} from './rate-limit-rules.js';
import type { RateLimitStorage } from './rate-limit-storage.interface.js';

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

/** The keys `rateLimits` takes (checked at startup). */
export const RATE_LIMIT_KEYS = {
  enabled: true,
  storage: true,
  onStorageError: true,
  trustProxy: true,
  send: SEND_RATE_LIMIT_SCOPE_KEYS,
  verify: RATE_LIMIT_SCOPE_KEYS,
} as const satisfies Record<keyof RateLimitOptions, true | KnownOptionKeys>;

/** Rate-limit settings after defaults. */
export interface ResolvedRateLimits {
  readonly enabled: boolean;
  readonly storage: RateLimitStorage | undefined;
  readonly onStorageError: RateLimitFailurePolicy;
  readonly trustProxy: TrustProxy;
  readonly send: Required<SendRateLimitScopes>;
  readonly verify: Required<RateLimitScopes>;
}

/** One `{ limit, window }` rule after checks, or false (off). */
export function rateLimitRule(
  name: string,
  value: RateLimitRule | false | undefined,
  fallback: RateLimitRule,
): RateLimitRule | false {
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

/** Validates `rateLimits` and fills in {@link RATE_LIMIT_DEFAULTS}. */
export function resolveRateLimits(options: RateLimitOptions = {}): ResolvedRateLimits {
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
      perEmail: rateLimitRule('rateLimits.send.perEmail', send.perEmail, d.send.perEmail),
      perEmailDaily: rateLimitRule('rateLimits.send.perEmailDaily', send.perEmailDaily, d.send.perEmailDaily),
      perEmailTotal: rateLimitRule('rateLimits.send.perEmailTotal', send.perEmailTotal, d.send.perEmailTotal),
      perEmailDailyTotal: rateLimitRule(
        'rateLimits.send.perEmailDailyTotal',
        send.perEmailDailyTotal,
        d.send.perEmailDailyTotal,
      ),
      perIp: rateLimitRule('rateLimits.send.perIp', send.perIp, d.send.perIp),
      perIpv6Prefix56: rateLimitRule('rateLimits.send.perIpv6Prefix56', send.perIpv6Prefix56, d.send.perIpv6Prefix56),
      perIpv6Prefix48: rateLimitRule('rateLimits.send.perIpv6Prefix48', send.perIpv6Prefix48, d.send.perIpv6Prefix48),
      global: rateLimitRule('rateLimits.send.global', send.global, d.send.global),
    },
    verify: {
      perEmail: rateLimitRule('rateLimits.verify.perEmail', verify.perEmail, d.verify.perEmail),
      perEmailTotal: rateLimitRule('rateLimits.verify.perEmailTotal', verify.perEmailTotal, d.verify.perEmailTotal),
      perIp: rateLimitRule('rateLimits.verify.perIp', verify.perIp, d.verify.perIp),
      perIpv6Prefix56: rateLimitRule(
        'rateLimits.verify.perIpv6Prefix56',
        verify.perIpv6Prefix56,
        d.verify.perIpv6Prefix56,
      ),
      perIpv6Prefix48: rateLimitRule(
        'rateLimits.verify.perIpv6Prefix48',
        verify.perIpv6Prefix48,
        d.verify.perIpv6Prefix48,
      ),
      global: rateLimitRule('rateLimits.verify.global', verify.global, d.verify.global),
    },
  };
}

/** What the rate limiter, its guard and its storage read of the module's options. */
export interface RateLimitConfig {
  readonly rateLimits: ResolvedRateLimits;
  /** Epoch milliseconds. */
  readonly clock: () => number;
}

/** DI token of {@link RateLimitConfig}. */
export const OTP_RATE_LIMIT_CONFIG = Symbol('OTP_RATE_LIMIT_CONFIG');
