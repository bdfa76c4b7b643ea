import { randomBytes } from 'node:crypto';
import type { LogLevel } from '@nestjs/common';
import { MIN_SECRET_LENGTH, type RefreshTokenDelivery } from 'nestjs-otp-auth';

/**
 * Where the sample app keeps its data, derived from `DATABASE_URL`.
 * `database` is a file path or `:memory:` for SQLite; server databases keep the URL.
 */
export type DatabaseConfig =
  | { readonly type: 'better-sqlite3'; readonly database: string }
  | { readonly type: 'postgres'; readonly url: string }
  | { readonly type: 'mysql'; readonly url: string };

/** How sign-in codes leave the service (`OTP_DELIVERY`). */
export type DeliveryConfig =
  { readonly kind: 'console' } | { readonly kind: 'webhook'; readonly url: string; readonly secret: string };

/** The HTTP server Nest runs on (`HTTP_PLATFORM`). */
export type HttpPlatform = 'express' | 'fastify';

/** Values accepted by `LOG_LEVEL`; each includes the more severe ones. */
export type LogLevelName = 'error' | 'warn' | 'log' | 'debug' | 'verbose';

/**
 * Everything the sample app reads from its environment, validated.
 * Optional library settings are `undefined` when unset so the library's defaults apply.
 */
export interface SampleConfig {
  readonly port: number;
  readonly database: DatabaseConfig;
  readonly secret: string;
  /** True when no `OTP_AUTH_SECRET` was given and a throwaway one was generated. */
  readonly secretGenerated: boolean;
  readonly developerMode: boolean | undefined;
  readonly delivery: DeliveryConfig;
  readonly refreshTokenDelivery: RefreshTokenDelivery;
  readonly cookieSecure: boolean;
  readonly accessTokenTtl: number | undefined;
  readonly refreshTokenTtl: number | undefined;
  readonly otpTtl: number | undefined;
  readonly resendCooldown: number | undefined;
  readonly maxAttempts: number | undefined;
  readonly logLevel: LogLevelName;
  /** The Nest logger levels that `logLevel` enables. */
  readonly logLevels: LogLevel[];
  readonly platform: HttpPlatform;
  readonly production: boolean;
  /** Things worth telling the operator at startup (logged once the logger is up). */
  readonly warnings: readonly string[];
}

/** The environment shape `loadConfig` reads; `process.env` by default. */
export type Environment = Readonly<Record<string, string | undefined>>;

const LOG_LEVEL_ORDER: readonly LogLevelName[] = ['error', 'warn', 'log', 'debug', 'verbose'];

/** A trimmed value, or undefined when unset or blank (`FOO=` in a .env file means "unset"). */
function read(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function oneOf<T extends string>(env: Environment, name: string, accepted: readonly T[], fallback: T): T {
  const value = read(env, name);
  if (value === undefined) return fallback;
  const match = accepted.find((candidate) => candidate === value.toLowerCase());
  if (match === undefined) {
    throw new Error(`${name} must be one of ${accepted.join(', ')} (got "${value}").`);
  }
  return match;
}

function bool(env: Environment, name: string): boolean | undefined {
  const value = read(env, name);
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === '1') return true;
  if (lower === 'false' || lower === '0') return false;
  throw new Error(`${name} must be true, false, 1 or 0 (got "${value}").`);
}

function positiveInteger(env: Environment, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = read(env, name);
  if (value === undefined) return undefined;
  // A strict pattern: Number() would accept "1e3", "0x10" and " 12 ".
  const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : '';
    throw new Error(`${name} must be a positive integer${range} (got "${value}").`);
  }
  return parsed;
}

const DAY = 24 * 3600;
/**
 * Ranges the library accepts (see its option docs), checked here too so a bad value is
 * reported by its variable name rather than by the library's option name.
 */
const LIMITS = {
  ACCESS_TOKEN_TTL: [10, 7 * DAY],
  REFRESH_TOKEN_TTL: [60, 366 * DAY],
  OTP_TTL: [1, DAY],
  OTP_RESEND_COOLDOWN: [1, DAY],
  OTP_MAX_ATTEMPTS: [1, 100],
} as const satisfies Record<string, readonly [number, number]>;

function limited(env: Environment, name: keyof typeof LIMITS): number | undefined {
  const [min, max] = LIMITS[name];
  return positiveInteger(env, name, min, max);
}

const DATABASE_URL_FORMS =
  'sqlite:<path> (e.g. sqlite:./data/sample.sqlite), sqlite::memory:, postgres://user:pass@host:5432/db, ' +
  'postgresql://..., mysql://user:pass@host:3306/db or mariadb://...';

/** Parses `DATABASE_URL`. Error messages name the scheme only, so passwords never reach logs. */
function database(env: Environment): DatabaseConfig {
  const url = read(env, 'DATABASE_URL') ?? 'sqlite:./data/sample.sqlite';
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    const path = url.slice('sqlite:'.length);
    if (path === '') {
      throw new Error(`DATABASE_URL "sqlite:" needs a file path or :memory:; accepted: ${DATABASE_URL_FORMS}.`);
    }
    return { type: 'better-sqlite3', database: path };
  }
  if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'mysql' || scheme === 'mariadb') {
    try {
      new URL(url);
    } catch {
      throw new Error(`DATABASE_URL is not a valid ${scheme}:// URL; accepted: ${DATABASE_URL_FORMS}.`);
    }
    // TypeORM takes the driver name from the URL's scheme, so normalize the aliases.
    const rest = url.slice(scheme.length);
    return scheme.startsWith('postgres')
      ? { type: 'postgres', url: `postgres${rest}` }
      : { type: 'mysql', url: `mysql${rest}` };
  }
  if (scheme === 'mongodb' || scheme === 'mongodb+srv') {
    throw new Error(`DATABASE_URL: MongoDB (${scheme}://) is not supported yet; accepted: ${DATABASE_URL_FORMS}.`);
  }
  throw new Error(
    `DATABASE_URL: ${scheme ? `the scheme "${scheme}:" is not supported` : 'not a URL'}; accepted: ${DATABASE_URL_FORMS}.`,
  );
}

function delivery(env: Environment, production: boolean): DeliveryConfig {
  const kind = oneOf(env, 'OTP_DELIVERY', ['console', 'webhook'] as const, 'console');
  if (kind === 'console') {
    if (production) {
      // Anyone who can read the logs could sign in as anyone.
      throw new Error(
        'OTP_DELIVERY=console (the default) prints codes to the log and is refused when NODE_ENV=production; ' +
          'set OTP_DELIVERY=webhook with OTP_WEBHOOK_URL and OTP_WEBHOOK_SECRET.',
      );
    }
    return { kind };
  }
  const url = read(env, 'OTP_WEBHOOK_URL');
  const secret = read(env, 'OTP_WEBHOOK_SECRET');
  if (url === undefined) {
    throw new Error('OTP_WEBHOOK_URL is required when OTP_DELIVERY=webhook (an http:// or https:// URL).');
  }
  if (!/^https?:\/\/[^/]/i.test(url) || !URL.canParse(url)) {
    throw new Error(`OTP_WEBHOOK_URL must be an http:// or https:// URL (got "${url}").`);
  }
  if (secret === undefined) {
    throw new Error(
      'OTP_WEBHOOK_SECRET is required when OTP_DELIVERY=webhook; share it with the receiver (e.g. `openssl rand -hex 32`).',
    );
  }
  return { kind, url, secret };
}

/**
 * Reads and validates the sample app's environment variables.
 *
 * @param env - The variables to read; `process.env` by default (tests pass their own).
 * @returns The typed configuration.
 * @throws Error whose message names the offending variable and the values it accepts.
 */
export function loadConfig(env: Environment = process.env): SampleConfig {
  const production = read(env, 'NODE_ENV') === 'production';
  const warnings: string[] = [];

  const developerMode = bool(env, 'OTP_DEVELOPER_MODE');
  if (developerMode && production) {
    // The library refuses this too; failing here gives the variable's name.
    throw new Error(
      'OTP_DEVELOPER_MODE must be false (or unset) when NODE_ENV=production: it makes every code 000000.',
    );
  }

  let secret = read(env, 'OTP_AUTH_SECRET');
  let secretGenerated = false;
  if (secret === undefined) {
    if (production) {
      throw new Error(
        'OTP_AUTH_SECRET is required when NODE_ENV=production; generate one with `openssl rand -hex 32`.',
      );
    }
    secret = randomBytes(32).toString('hex');
    secretGenerated = true;
    warnings.push(
      'OTP_AUTH_SECRET is not set: using a random secret for this run, so sessions and tokens will not survive a restart. ' +
        'Set one (`openssl rand -hex 32`) to keep them.',
    );
  } else if (!developerMode && secret.length < MIN_SECRET_LENGTH) {
    throw new Error(
      `OTP_AUTH_SECRET must be at least ${MIN_SECRET_LENGTH} characters (got ${secret.length}); generate one with \`openssl rand -hex 32\`.`,
    );
  }

  const logLevel = oneOf(env, 'LOG_LEVEL', LOG_LEVEL_ORDER, 'log');
  // Nest's 'fatal' sits above 'error' and is always on.
  const logLevels: LogLevel[] = ['fatal', ...LOG_LEVEL_ORDER.slice(0, LOG_LEVEL_ORDER.indexOf(logLevel) + 1)];

  return {
    port: positiveInteger(env, 'PORT', 1, 65535) ?? 3000,
    database: database(env),
    secret,
    secretGenerated,
    developerMode,
    delivery: delivery(env, production),
    refreshTokenDelivery: oneOf(env, 'REFRESH_TOKEN_DELIVERY', ['cookie', 'body', 'both'] as const, 'cookie'),
    cookieSecure: bool(env, 'COOKIE_SECURE') ?? true,
    accessTokenTtl: limited(env, 'ACCESS_TOKEN_TTL'),
    refreshTokenTtl: limited(env, 'REFRESH_TOKEN_TTL'),
    otpTtl: limited(env, 'OTP_TTL'),
    resendCooldown: limited(env, 'OTP_RESEND_COOLDOWN'),
    maxAttempts: limited(env, 'OTP_MAX_ATTEMPTS'),
    logLevel,
    logLevels,
    platform: oneOf(env, 'HTTP_PLATFORM', ['express', 'fastify'] as const, 'express'),
    production,
    warnings,
  };
}
