import { randomBytes } from 'node:crypto';
import type { LogLevel } from '@nestjs/common';
import { MIN_API_KEY_LENGTH, MIN_SECRET_LENGTH, type RefreshTokenDelivery } from 'nestjs-otp-auth';

/**
 * Where the sample app keeps its data, derived from `DATABASE_URL`.
 * `database` is a file path or `:memory:` for SQLite; server databases keep the URL.
 */
export type DatabaseConfig =
  | { readonly type: 'better-sqlite3'; readonly database: string }
  | { readonly type: 'postgres'; readonly url: string }
  | { readonly type: 'mysql'; readonly url: string }
  | { readonly type: 'mongodb'; readonly url: string };

/** How sign-in codes leave the service (`OTP_DELIVERY`). */
export type DeliveryConfig =
  | { readonly kind: 'console' }
  | { readonly kind: 'webhook'; readonly url: string; readonly secret: string }
  | {
      readonly kind: 'smtp';
      readonly url: string;
      readonly from: string;
      /**
       * `SMTP_REQUIRE_TLS`: insist on STARTTLS (`tls.requireTLS` of the sender); undefined leaves
       * the sender's default, on for every host but loopback.
       */
      readonly requireTls: boolean | undefined;
    }
  | {
      readonly kind: 'sms';
      readonly accountSid: string;
      readonly authToken: string;
      readonly from: string | undefined;
      readonly messagingServiceSid: string | undefined;
      readonly baseUrl: string | undefined;
    };

/** A request limit from `RATE_LIMIT_*` (`<limit>/<window seconds>`), or false for `off`. */
export type LimitSetting = { readonly limit: number; readonly window: number } | false | undefined;

/** Request limits and where their counters live. */
export interface RateLimitConfig {
  readonly enabled: boolean;
  readonly onRedisError: 'local' | 'fail-closed' | 'fail-open';
  readonly trustProxy: false | number | readonly string[];
  readonly send: {
    readonly perEmail: LimitSetting;
    readonly perEmailDaily: LimitSetting;
    readonly perEmailTotal: LimitSetting;
    readonly perEmailDailyTotal: LimitSetting;
    readonly perIp: LimitSetting;
    readonly global: LimitSetting;
  };
  readonly verify: {
    readonly perEmail: LimitSetting;
    readonly perEmailTotal: LimitSetting;
    readonly perIp: LimitSetting;
    readonly global: LimitSetting;
  };
}

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
  /**
   * Longest wait for a database connection or a query, in seconds (`DATABASE_TIMEOUT`, default
   * 5): past it the request fails with 503 instead of hanging while the database is unreachable.
   */
  readonly databaseTimeout: number;
  /**
   * Let TypeORM create and alter the tables at startup (`DATABASE_SYNCHRONIZE`, default true).
   * Turn it off where migrations own the schema, and on all but one instance of a rollout.
   */
  readonly databaseSynchronize: boolean;
  readonly secret: string;
  /** True when no `OTP_AUTH_SECRET` was given and a throwaway one was generated. */
  readonly secretGenerated: boolean;
  readonly developerMode: boolean | undefined;
  readonly delivery: DeliveryConfig;
  /**
   * `OTP_DELIVERY_MODE`: wait for the sender (inline) or answer at once and send in the background
   * (outbox). Default `inline`, but `outbox` for `OTP_DELIVERY=sms`: some addresses have no phone
   * on file, and the outbox answers them and the others in the same time.
   */
  readonly deliveryMode: 'inline' | 'outbox';
  /**
   * `OTP_DELIVERY_DEADLINE_MS` (`delivery.responseDeadline`): inline delivery with uniform timing
   * (invite-only, or SMS) answers every request this many milliseconds after it arrived.
   */
  readonly deliveryDeadlineMs: number | undefined;
  /** `OTP_RECIPIENT_LIMIT` (`delivery.recipientLimit`): messages per phone number; undefined keeps the default. */
  readonly recipientLimit: readonly { readonly limit: number; readonly window: number }[] | false | undefined;
  /** Name in messages (`OTP_APP_NAME`). */
  readonly appName: string;
  /** `REDIS_URL`: shared rate limits, stateless markers and instant revocation across instances. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and channel (`REDIS_KEY_PREFIX`), for several deployments on one Redis. */
  readonly redisKeyPrefix: string;
  readonly rateLimits: RateLimitConfig;
  readonly codeMode: 'stored' | 'stateless';
  readonly statelessWindow: number | undefined;
  readonly statelessDrift: number | undefined;
  readonly refreshTokenDelivery: RefreshTokenDelivery;
  readonly cookieSecure: boolean;
  /** `SameSite` of the refresh cookie. */
  readonly cookieSameSite: 'strict' | 'lax' | 'none';
  /**
   * Browser origins allowed to call the service with credentials (CORS) and to send the refresh
   * cookie (`cookie.allowedOrigins`); empty: no CORS headers, same-origin pages only.
   */
  readonly corsOrigins: readonly string[];
  readonly accessTokenTtl: number | undefined;
  readonly refreshTokenTtl: number | undefined;
  /** `SESSION_MAX_AGE`: absolute session lifetime in seconds (library default 30 days). */
  readonly sessionMaxAge: number | undefined;
  /** `SESSION_IDLE_TIMEOUT`: seconds without a refresh that end a session; 0 or unset: none. */
  readonly sessionIdleTimeout: number | undefined;
  readonly otpTtl: number | undefined;
  readonly resendCooldown: number | undefined;
  readonly maxAttempts: number | undefined;
  /**
   * `OTP_AUTO_CREATE_USERS` (default true): whether a code sign-in creates an unknown address's
   * user. False for invite-only apps: unknown addresses get the same answers, but no mail.
   */
  readonly autoCreateUsers: boolean;
  /** Former `OTP_AUTH_SECRET` values still accepted for TOTP secrets and backup codes. */
  readonly previousSecrets: readonly string[];
  readonly totpIssuer: string | undefined;
  /** Keys allowed to call `POST /auth/introspect`; empty leaves introspection off. */
  readonly introspectionApiKeys: readonly string[];
  readonly totpWindow: number | undefined;
  /** Seconds a sign-in stays fresh enough to enrol an authenticator; 0 turns the check off. */
  readonly totpEnrollmentMaxAuthAge: number | undefined;
  /** Seconds a sign-in stays fresh enough to turn 2FA off or replace backup codes; 0 turns the check off. */
  readonly totpManagementMaxAuthAge: number | undefined;
  readonly logLevel: LogLevelName;
  /** The Nest logger levels that `logLevel` enables. */
  readonly logLevels: LogLevel[];
  readonly platform: HttpPlatform;
  /**
   * `OTP_WEB_UI` (default true): serve the sign-in page at `/` and its files under `/ui/`. Off,
   * both answer 404 (a deployment used only as an API).
   */
  readonly webUi: boolean;
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

/** A comma-separated list, entries trimmed, empty ones dropped; [] when unset. */
function commaList(env: Environment, name: string): string[] {
  return (read(env, name) ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
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
  // (min may be 0 for counts such as OTP_TOTP_WINDOW.)
  const value = read(env, name);
  if (value === undefined) return undefined;
  // A strict pattern: Number() would accept "1e3", "0x10" and " 12 ".
  const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : '';
    throw new Error(`${name} must be ${min === 0 ? 'an' : 'a positive'} integer${range} (got "${value}").`);
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
  SESSION_MAX_AGE: [60, 366 * DAY],
  SESSION_IDLE_TIMEOUT: [60, 366 * DAY],
  OTP_TTL: [1, DAY],
  OTP_RESEND_COOLDOWN: [1, DAY],
  OTP_MAX_ATTEMPTS: [1, 100],
  OTP_TOTP_WINDOW: [0, 10],
  OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE: [0, 366 * DAY],
  OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE: [0, 366 * DAY],
  OTP_STATELESS_WINDOW: [30, 3600],
  OTP_STATELESS_DRIFT: [0, 5],
} as const satisfies Record<string, readonly [number, number]>;

function limited(env: Environment, name: keyof typeof LIMITS): number | undefined {
  const [min, max] = LIMITS[name];
  return positiveInteger(env, name, min, max);
}

const DATABASE_URL_FORMS =
  'sqlite:<path> (e.g. sqlite:./data/sample.sqlite), sqlite::memory:, postgres://user:pass@host:5432/db, ' +
  'postgresql://..., mysql://user:pass@host:3306/db, mariadb://..., mongodb://host:27017/db or mongodb+srv://...';

/**
 * A `mongodb://` URL may list several hosts (`h1:27017,h2:27017`, a replica set), which the WHATWG
 * URL parser refuses: each host is checked on its own, with the rest of the URL.
 */
function isMongoUrl(url: string): boolean {
  const parts = /^(mongodb(?:\+srv)?:\/\/)([^@/?]*@)?([^/?]*)(.*)$/i.exec(url);
  if (!parts) return false;
  const [, scheme, credentials = '', hosts, rest] = parts as unknown as [
    string,
    string,
    string | undefined,
    string,
    string,
  ];
  const list = hosts.split(',');
  if (list.length > 1 && scheme.toLowerCase() === 'mongodb+srv://') return false; // SRV names one host
  return list.every((host) => host !== '' && URL.canParse(`${scheme}${credentials}${host}${rest}`));
}

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
    if (!isMongoUrl(url))
      throw new Error(`DATABASE_URL is not a valid ${scheme}:// URL; accepted: ${DATABASE_URL_FORMS}.`);
    return { type: 'mongodb', url };
  }
  throw new Error(
    `DATABASE_URL: ${scheme ? `the scheme "${scheme}:" is not supported` : 'not a URL'}; accepted: ${DATABASE_URL_FORMS}.`,
  );
}

function delivery(env: Environment, production: boolean, warnings: string[]): DeliveryConfig {
  const kind = oneOf(env, 'OTP_DELIVERY', ['console', 'webhook', 'smtp', 'sms'] as const, 'console');
  if (kind === 'console') {
    if (production) {
      // Anyone who can read the logs could sign in as anyone.
      throw new Error(
        'OTP_DELIVERY=console (the default) prints codes to the log and is refused when NODE_ENV=production; ' +
          'set OTP_DELIVERY=smtp (SMTP_URL, SMTP_FROM), sms (SMS_*) or webhook (OTP_WEBHOOK_URL, OTP_WEBHOOK_SECRET).',
      );
    }
    return { kind };
  }
  if (kind === 'smtp') {
    const url = read(env, 'SMTP_URL');
    const from = read(env, 'SMTP_FROM');
    if (url === undefined || !/^smtps?:\/\/[^/]/i.test(url) || !URL.canParse(url)) {
      // Only the scheme is echoed: the URL may carry a password.
      throw new Error('SMTP_URL is required when OTP_DELIVERY=smtp: smtp://user:pass@host:587 or smtps://host:465.');
    }
    if (from === undefined) {
      throw new Error('SMTP_FROM is required when OTP_DELIVERY=smtp, e.g. "Acme <no-reply@acme.example>".');
    }
    const requireTls = bool(env, 'SMTP_REQUIRE_TLS');
    if (production && requireTls === false && /^smtp:/i.test(url) && !isLoopbackHost(new URL(url).hostname)) {
      // Allowed for a relay on a trusted network (e.g. Mailpit in docker-compose), but never quietly.
      warnings.push(
        'SMTP_REQUIRE_TLS=false in production with an SMTP server on another host: if it does not offer STARTTLS, sign-in codes (and the SMTP password) cross the network in clear text. Keep it only for a relay on a network you trust.',
      );
    }
    return { kind, url, from, requireTls };
  }
  if (kind === 'sms') {
    const accountSid = read(env, 'SMS_ACCOUNT_SID');
    const authToken = read(env, 'SMS_AUTH_TOKEN');
    const from = read(env, 'SMS_FROM');
    const messagingServiceSid = read(env, 'SMS_MESSAGING_SERVICE_SID');
    const baseUrl = read(env, 'SMS_BASE_URL');
    if (accountSid === undefined || authToken === undefined) {
      throw new Error('SMS_ACCOUNT_SID and SMS_AUTH_TOKEN are required when OTP_DELIVERY=sms (Twilio credentials).');
    }
    if ((from === undefined) === (messagingServiceSid === undefined)) {
      throw new Error('OTP_DELIVERY=sms needs exactly one of SMS_FROM (a phone number) and SMS_MESSAGING_SERVICE_SID.');
    }
    if (baseUrl !== undefined && (!/^https?:\/\/[^/]/i.test(baseUrl) || !URL.canParse(baseUrl))) {
      // The value is not echoed: URLs can carry credentials or tokens.
      throw new Error('SMS_BASE_URL must be an http(s) URL, e.g. https://api.twilio.com.');
    }
    if (baseUrl !== undefined && production && !/^https:/i.test(baseUrl)) {
      // The account token travels as Basic auth on every message.
      throw new Error('SMS_BASE_URL must be https:// when NODE_ENV=production: it carries the SMS account token.');
    }
    return { kind, accountSid, authToken, from, messagingServiceSid, baseUrl };
  }
  const url = read(env, 'OTP_WEBHOOK_URL');
  const secret = read(env, 'OTP_WEBHOOK_SECRET');
  if (url === undefined) {
    throw new Error('OTP_WEBHOOK_URL is required when OTP_DELIVERY=webhook (an http:// or https:// URL).');
  }
  if (!/^https?:\/\/[^/]/i.test(url) || !URL.canParse(url)) {
    // The value is not echoed: webhook URLs often carry a token.
    throw new Error('OTP_WEBHOOK_URL must be an http:// or https:// URL, e.g. https://hooks.example.com/otp.');
  }
  if (production && !/^https:/i.test(url) && !isLoopbackUrl(url)) {
    // The code travels in the body: a plain-HTTP hop across a network exposes it.
    throw new Error(
      'OTP_WEBHOOK_URL must be https:// when NODE_ENV=production (plain http:// only to a receiver on this host: localhost, 127.0.0.1 or [::1]).',
    );
  }
  if (secret === undefined) {
    throw new Error(
      'OTP_WEBHOOK_SECRET is required when OTP_DELIVERY=webhook; share it with the receiver (e.g. `openssl rand -hex 32`).',
    );
  }
  if (production && secret.length < MIN_SECRET_LENGTH) {
    // Whoever guesses it can forge deliveries to the receiver.
    throw new Error(
      `OTP_WEBHOOK_SECRET must be at least ${MIN_SECRET_LENGTH} characters when NODE_ENV=production (got ${secret.length}); generate one with \`openssl rand -hex 32\`.`,
    );
  }
  return { kind, url, secret };
}

/** Whether a URL points at this host (a sidecar), where plain HTTP crosses no network. */
function isLoopbackUrl(url: string): boolean {
  return isLoopbackHost(new URL(url).hostname);
}

/** A URL's `hostname` naming this host. `smtp:` URLs keep the host's case, hence the lower-casing. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `RATE_LIMIT_*`: `<limit>/<window seconds>` (e.g. `5/600`), or `off`. */
function limitSetting(env: Environment, name: string): LimitSetting {
  const value = read(env, name);
  if (value === undefined) return undefined;
  if (value.toLowerCase() === 'off') return false;
  const match = /^(\d{1,8})\/(\d{1,8})$/.exec(value);
  const limit = Number(match?.[1]);
  const window = Number(match?.[2]);
  if (!match || limit < 1 || window < 1 || window > 366 * DAY) {
    throw new Error(`${name} must be <limit>/<window seconds> such as 5/600, or off (got "${value}").`);
  }
  return { limit, window };
}

/** `OTP_RECIPIENT_LIMIT`: `off`, or comma-separated `<limit>/<window seconds>` rules (`5/600,20/86400`). */
function recipientLimit(env: Environment): SampleConfig['recipientLimit'] {
  const name = 'OTP_RECIPIENT_LIMIT';
  const value = read(env, name);
  if (value === undefined) return undefined;
  if (value.toLowerCase() === 'off') return false;
  return value.split(',').map((part) => {
    const rule = limitSetting({ [name]: part.trim() }, name);
    if (!rule)
      throw new Error(`${name} must be off or <limit>/<window seconds> rules such as 5/600,20/86400 (got "${value}").`);
    return rule;
  });
}

function trustProxy(env: Environment): false | number | string[] {
  const value = read(env, 'TRUST_PROXY');
  if (value === undefined || value.toLowerCase() === 'false') return false;
  if (/^\d{1,2}$/.test(value)) return Number(value);
  if (value.toLowerCase() === 'true') {
    throw new Error(
      'TRUST_PROXY=true would let any client choose its IP; give the hop count (e.g. 1) or the proxy addresses/CIDRs.',
    );
  }
  return commaList(env, 'TRUST_PROXY');
}

function rateLimits(env: Environment): RateLimitConfig {
  return {
    enabled: bool(env, 'RATE_LIMITS_ENABLED') ?? true,
    onRedisError: oneOf(env, 'RATE_LIMIT_ON_REDIS_ERROR', ['local', 'fail-closed', 'fail-open'] as const, 'local'),
    trustProxy: trustProxy(env),
    send: {
      perEmail: limitSetting(env, 'RATE_LIMIT_SEND_PER_EMAIL'),
      perEmailDaily: limitSetting(env, 'RATE_LIMIT_SEND_PER_EMAIL_DAILY'),
      perEmailTotal: limitSetting(env, 'RATE_LIMIT_SEND_PER_EMAIL_TOTAL'),
      perEmailDailyTotal: limitSetting(env, 'RATE_LIMIT_SEND_PER_EMAIL_DAILY_TOTAL'),
      perIp: limitSetting(env, 'RATE_LIMIT_SEND_PER_IP'),
      global: limitSetting(env, 'RATE_LIMIT_SEND_GLOBAL'),
    },
    verify: {
      perEmail: limitSetting(env, 'RATE_LIMIT_VERIFY_PER_EMAIL'),
      perEmailTotal: limitSetting(env, 'RATE_LIMIT_VERIFY_PER_EMAIL_TOTAL'),
      perIp: limitSetting(env, 'RATE_LIMIT_VERIFY_PER_IP'),
      global: limitSetting(env, 'RATE_LIMIT_VERIFY_GLOBAL'),
    },
  };
}

function redisUrl(env: Environment): string | undefined {
  const url = read(env, 'REDIS_URL');
  if (url !== undefined && (!/^rediss?:\/\/[^/]/i.test(url) || !URL.canParse(url))) {
    throw new Error('REDIS_URL must be redis://[user:pass@]host:6379[/db] or rediss://...');
  }
  return url;
}

function previousSecrets(env: Environment, current: string): string[] {
  const list = commaList(env, 'OTP_AUTH_PREVIOUS_SECRETS');
  list.forEach((value, index) => {
    if (value.length < MIN_SECRET_LENGTH) {
      throw new Error(
        `OTP_AUTH_PREVIOUS_SECRETS: entry ${index + 1} is ${value.length} characters; each former secret must be at least ${MIN_SECRET_LENGTH}.`,
      );
    }
    if (value === current) {
      throw new Error(
        `OTP_AUTH_PREVIOUS_SECRETS: entry ${index + 1} equals OTP_AUTH_SECRET; list only former secrets.`,
      );
    }
  });
  return list;
}

function introspectionApiKeys(env: Environment): string[] {
  const keys = commaList(env, 'OTP_INTROSPECTION_API_KEYS');
  keys.forEach((key, index) => {
    if (key.length < MIN_API_KEY_LENGTH) {
      throw new Error(
        `OTP_INTROSPECTION_API_KEYS: key ${index + 1} is ${key.length} characters; each must be at least ${MIN_API_KEY_LENGTH} (\`openssl rand -hex 32\`).`,
      );
    }
  });
  return keys;
}

function corsOrigins(env: Environment, production: boolean, warnings: string[]): string[] {
  const origins = commaList(env, 'CORS_ORIGINS');
  for (const origin of origins) {
    // An origin is scheme, host and port only: what browsers send in `Origin`.
    const parsed = URL.canParse(origin) ? new URL(origin) : undefined;
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new Error(
        `CORS_ORIGINS: "${origin}" is not an origin; give scheme and host (and port), e.g. https://app.example.com, with no path or trailing slash.`,
      );
    }
  }
  const plain = origins.filter((origin) => origin.startsWith('http://'));
  if (production && plain.length > 0) {
    warnings.push(
      `CORS_ORIGINS lists plain-HTTP origins (${plain.join(', ')}) in production: anyone on their network path can run script there with this service's credentials.`,
    );
  }
  return origins;
}

function totpIssuer(env: Environment): string | undefined {
  const issuer = read(env, 'OTP_TOTP_ISSUER');
  if (issuer !== undefined && (issuer.includes(':') || issuer.length > 64)) {
    // The key URI format uses ':' to separate issuer and account.
    throw new Error(`OTP_TOTP_ISSUER may not contain ":" and is at most 64 characters (got "${issuer}").`);
  }
  return issuer;
}

/**
 * Reads and validates the sample app's environment variables.
 *
 * @param env - The variables to read; `process.env` by default (tests pass their own).
 * @returns The typed configuration.
 * @throws Error whose message names the offending variable and the values it accepts.
 */
export function loadConfig(env: Environment = process.env): SampleConfig {
  // `Production` or ` production ` are production too: a guard that a capital letter turns off is no guard.
  const production = read(env, 'NODE_ENV')?.trim().toLowerCase() === 'production';
  const warnings: string[] = [];

  const cookieSecure = bool(env, 'COOKIE_SECURE') ?? true;
  const cookieSameSite = oneOf(env, 'COOKIE_SAME_SITE', ['strict', 'lax', 'none'] as const, 'strict');
  if (cookieSameSite === 'none' && !cookieSecure) {
    throw new Error(
      'COOKIE_SAME_SITE=none needs COOKIE_SECURE=true: browsers drop SameSite=None cookies without Secure.',
    );
  }
  if (production && !cookieSecure) {
    warnings.push(
      'COOKIE_SECURE=false in production: the refresh cookie also travels over plain HTTP. Keep it only behind a proxy that terminates TLS for every client.',
    );
  }
  const databaseSynchronize = bool(env, 'DATABASE_SYNCHRONIZE') ?? true;
  if (production && databaseSynchronize && !(read(env, 'DATABASE_URL') ?? '').startsWith('mongodb')) {
    warnings.push(
      'DATABASE_SYNCHRONIZE is on in production: TypeORM alters tables to match the entities at every start (columns can be dropped), and instances starting together race. Set it to false once the schema exists, or use migrations.',
    );
  }

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
    databaseTimeout: positiveInteger(env, 'DATABASE_TIMEOUT', 1, 600) ?? 5,
    databaseSynchronize,
    secret,
    secretGenerated,
    developerMode,
    delivery: delivery(env, production, warnings),
    deliveryMode: oneOf(
      env,
      'OTP_DELIVERY_MODE',
      ['inline', 'outbox'] as const,
      read(env, 'OTP_DELIVERY')?.toLowerCase() === 'sms' ? 'outbox' : 'inline',
    ),
    deliveryDeadlineMs: positiveInteger(env, 'OTP_DELIVERY_DEADLINE_MS', 1, 60_000),
    recipientLimit: recipientLimit(env),
    appName: read(env, 'OTP_APP_NAME') ?? 'OTP sample',
    redisUrl: redisUrl(env),
    redisKeyPrefix: read(env, 'REDIS_KEY_PREFIX') ?? 'otp:',
    rateLimits: rateLimits(env),
    codeMode: oneOf(env, 'OTP_CODE_MODE', ['stored', 'stateless'] as const, 'stored'),
    statelessWindow: limited(env, 'OTP_STATELESS_WINDOW'),
    statelessDrift: limited(env, 'OTP_STATELESS_DRIFT'),
    refreshTokenDelivery: oneOf(env, 'REFRESH_TOKEN_DELIVERY', ['cookie', 'body', 'both'] as const, 'cookie'),
    cookieSecure,
    cookieSameSite,
    corsOrigins: corsOrigins(env, production, warnings),
    accessTokenTtl: limited(env, 'ACCESS_TOKEN_TTL'),
    refreshTokenTtl: limited(env, 'REFRESH_TOKEN_TTL'),
    sessionMaxAge: limited(env, 'SESSION_MAX_AGE'),
    // 0 switches the idle timeout off, as leaving it unset does.
    sessionIdleTimeout: read(env, 'SESSION_IDLE_TIMEOUT') === '0' ? undefined : limited(env, 'SESSION_IDLE_TIMEOUT'),
    otpTtl: limited(env, 'OTP_TTL'),
    resendCooldown: limited(env, 'OTP_RESEND_COOLDOWN'),
    maxAttempts: limited(env, 'OTP_MAX_ATTEMPTS'),
    autoCreateUsers: bool(env, 'OTP_AUTO_CREATE_USERS') ?? true,
    previousSecrets: previousSecrets(env, secret),
    totpIssuer: totpIssuer(env),
    introspectionApiKeys: introspectionApiKeys(env),
    totpWindow: limited(env, 'OTP_TOTP_WINDOW'),
    totpEnrollmentMaxAuthAge: limited(env, 'OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE'),
    totpManagementMaxAuthAge: limited(env, 'OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE'),
    logLevel,
    logLevels,
    platform: oneOf(env, 'HTTP_PLATFORM', ['express', 'fastify'] as const, 'express'),
    webUi: bool(env, 'OTP_WEB_UI') ?? true,
    production,
    warnings,
  };
}
