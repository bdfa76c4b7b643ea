import { randomBytes } from 'node:crypto';
import type { LogLevel } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import {
  MIN_API_KEY_LENGTH,
  MIN_SECRET_LENGTH,
  OtpAuthConfigurationError,
  resolveOtpAuthOptions,
  type OtpAuthModuleOptions,
  type OtpAuthStore,
  type RateLimitOptions,
  type RefreshTokenDelivery,
} from 'nestjs-otp-auth';
import { parseEnvironment } from './environment.schema.js';

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

/** Whether a URL's `hostname` names this host. `smtp:` URLs keep the host's case, hence the lower-casing. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** What production refuses or warns about in the delivery that `OTP_DELIVERY` chose. */
function checkDelivery(delivery: DeliveryConfig, production: boolean, warnings: string[]): DeliveryConfig {
  if (!production) return delivery;
  switch (delivery.kind) {
    case 'console':
      // Anyone who can read the logs could sign in as anyone.
      throw new Error(
        'OTP_DELIVERY=console (the default) prints codes to the log and is refused when NODE_ENV=production; ' +
          'set OTP_DELIVERY=smtp (SMTP_URL, SMTP_FROM), sms (SMS_*) or webhook (OTP_WEBHOOK_URL, OTP_WEBHOOK_SECRET).',
      );
    case 'smtp':
      if (
        delivery.requireTls === false &&
        /^smtp:/i.test(delivery.url) &&
        !isLoopbackHost(new URL(delivery.url).hostname)
      ) {
        // Allowed for a relay on a trusted network (e.g. Mailpit in docker-compose), but never quietly.
        warnings.push(
          'SMTP_REQUIRE_TLS=false in production with an SMTP server on another host: if it does not offer STARTTLS, sign-in codes (and the SMTP password) cross the network in clear text. Keep it only for a relay on a network you trust.',
        );
      }
      return delivery;
    case 'sms':
      if (delivery.baseUrl !== undefined && !/^https:/i.test(delivery.baseUrl)) {
        // The account token travels as Basic auth on every message.
        throw new Error('SMS_BASE_URL must be https:// when NODE_ENV=production: it carries the SMS account token.');
      }
      return delivery;
    case 'webhook':
      if (!/^https:/i.test(delivery.url) && !isLoopbackHost(new URL(delivery.url).hostname)) {
        // The code travels in the body: a plain-HTTP hop across a network exposes it.
        throw new Error(
          'OTP_WEBHOOK_URL must be https:// when NODE_ENV=production (plain http:// only to a receiver on this host: localhost, 127.0.0.1 or [::1]).',
        );
      }
      if (delivery.secret.length < MIN_SECRET_LENGTH) {
        // Whoever guesses it can forge deliveries to the receiver.
        throw new Error(
          `OTP_WEBHOOK_SECRET must be at least ${MIN_SECRET_LENGTH} characters when NODE_ENV=production (got ${delivery.secret.length}); generate one with \`openssl rand -hex 32\`.`,
        );
      }
      return delivery;
  }
}

function checkPreviousSecrets(list: readonly string[], current: string): readonly string[] {
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

function checkIntrospectionApiKeys(keys: readonly string[]): readonly string[] {
  keys.forEach((key, index) => {
    if (key.length < MIN_API_KEY_LENGTH) {
      throw new Error(
        `OTP_INTROSPECTION_API_KEYS: key ${index + 1} is ${key.length} characters; each must be at least ${MIN_API_KEY_LENGTH} (\`openssl rand -hex 32\`).`,
      );
    }
  });
  return keys;
}

/** For a run without `OTP_AUTH_SECRET`: refused in production, else a random one (with a warning). */
function throwawaySecret(production: boolean, warnings: string[]): string {
  if (production) {
    throw new Error('OTP_AUTH_SECRET is required when NODE_ENV=production; generate one with `openssl rand -hex 32`.');
  }
  warnings.push(
    'OTP_AUTH_SECRET is not set: using a random secret for this run, so sessions and tokens will not survive a restart. ' +
      'Set one (`openssl rand -hex 32`) to keep them.',
  );
  return randomBytes(32).toString('hex');
}

/**
 * Reads and validates the sample app's environment variables: their shape with the zod schema of
 * `environment.schema.ts`, how they combine (and what production refuses) here, and the numbers
 * with the library's own `resolveOtpAuthOptions`, whose errors are reported by variable name.
 *
 * @param env - The variables to read; `process.env` by default (tests pass their own).
 * @returns The typed configuration.
 * @throws Error whose message names the offending variable and the values it accepts.
 */
export function loadConfig(env: Environment = process.env): SampleConfig {
  const vars = parseEnvironment(env);
  // `Production` or ` production ` are production too: a guard that a capital letter turns off is no guard.
  const production = vars.NODE_ENV?.toLowerCase() === 'production';
  const warnings: string[] = [];

  const cookieSecure = vars.COOKIE_SECURE;
  if (vars.COOKIE_SAME_SITE === 'none' && !cookieSecure) {
    throw new Error(
      'COOKIE_SAME_SITE=none needs COOKIE_SECURE=true: browsers drop SameSite=None cookies without Secure.',
    );
  }
  if (production && !cookieSecure) {
    warnings.push(
      'COOKIE_SECURE=false in production: the refresh cookie also travels over plain HTTP. Keep it only behind a proxy that terminates TLS for every client.',
    );
  }
  if (production && vars.DATABASE_SYNCHRONIZE && vars.DATABASE_URL.type !== 'mongodb') {
    warnings.push(
      'DATABASE_SYNCHRONIZE is on in production: TypeORM alters tables to match the entities at every start (columns can be dropped), and instances starting together race. Set it to false once the schema exists, or use migrations.',
    );
  }

  const developerMode = vars.OTP_DEVELOPER_MODE;
  if (developerMode && production) {
    // The library refuses this too; failing here says which variable to change.
    throw new Error(
      'OTP_DEVELOPER_MODE must be false (or unset) when NODE_ENV=production: it makes every code 000000.',
    );
  }
  // The library checks its length (developer mode lets a short one through there too).
  const secret = vars.OTP_AUTH_SECRET ?? throwawaySecret(production, warnings);
  const delivery = checkDelivery(vars.OTP_DELIVERY, production, warnings);

  const plainOrigins = vars.CORS_ORIGINS.filter((origin) => origin.startsWith('http://'));
  if (production && plainOrigins.length > 0) {
    warnings.push(
      `CORS_ORIGINS lists plain-HTTP origins (${plainOrigins.join(', ')}) in production: anyone on their network path can run script there with this service's credentials.`,
    );
  }

  const logLevel = vars.LOG_LEVEL;
  // Nest's 'fatal' sits above 'error' and is always on.
  const logLevels: LogLevel[] = ['fatal', ...LOG_LEVEL_ORDER.slice(0, LOG_LEVEL_ORDER.indexOf(logLevel) + 1)];

  const config: SampleConfig = {
    port: vars.PORT,
    database: vars.DATABASE_URL,
    databaseTimeout: vars.DATABASE_TIMEOUT,
    databaseSynchronize: vars.DATABASE_SYNCHRONIZE,
    secret,
    secretGenerated: vars.OTP_AUTH_SECRET === undefined,
    developerMode,
    delivery,
    deliveryMode: vars.OTP_DELIVERY_MODE ?? (delivery.kind === 'sms' ? 'outbox' : 'inline'),
    deliveryDeadlineMs: vars.OTP_DELIVERY_DEADLINE_MS,
    recipientLimit: vars.OTP_RECIPIENT_LIMIT,
    appName: vars.OTP_APP_NAME,
    redisUrl: vars.REDIS_URL,
    redisKeyPrefix: vars.REDIS_KEY_PREFIX,
    rateLimits: {
      enabled: vars.RATE_LIMITS_ENABLED,
      onRedisError: vars.RATE_LIMIT_ON_REDIS_ERROR,
      trustProxy: vars.TRUST_PROXY,
      send: {
        perEmail: vars.RATE_LIMIT_SEND_PER_EMAIL,
        perEmailDaily: vars.RATE_LIMIT_SEND_PER_EMAIL_DAILY,
        perEmailTotal: vars.RATE_LIMIT_SEND_PER_EMAIL_TOTAL,
        perEmailDailyTotal: vars.RATE_LIMIT_SEND_PER_EMAIL_DAILY_TOTAL,
        perIp: vars.RATE_LIMIT_SEND_PER_IP,
        global: vars.RATE_LIMIT_SEND_GLOBAL,
      },
      verify: {
        perEmail: vars.RATE_LIMIT_VERIFY_PER_EMAIL,
        perEmailTotal: vars.RATE_LIMIT_VERIFY_PER_EMAIL_TOTAL,
        perIp: vars.RATE_LIMIT_VERIFY_PER_IP,
        global: vars.RATE_LIMIT_VERIFY_GLOBAL,
      },
    },
    codeMode: vars.OTP_CODE_MODE,
    statelessWindow: vars.OTP_STATELESS_WINDOW,
    statelessDrift: vars.OTP_STATELESS_DRIFT,
    refreshTokenDelivery: vars.REFRESH_TOKEN_DELIVERY,
    cookieSecure,
    cookieSameSite: vars.COOKIE_SAME_SITE,
    corsOrigins: vars.CORS_ORIGINS,
    accessTokenTtl: vars.ACCESS_TOKEN_TTL,
    refreshTokenTtl: vars.REFRESH_TOKEN_TTL,
    sessionMaxAge: vars.SESSION_MAX_AGE,
    // 0 switches the idle timeout off, as leaving it unset does.
    sessionIdleTimeout: vars.SESSION_IDLE_TIMEOUT === 0 ? undefined : vars.SESSION_IDLE_TIMEOUT,
    otpTtl: vars.OTP_TTL,
    resendCooldown: vars.OTP_RESEND_COOLDOWN,
    maxAttempts: vars.OTP_MAX_ATTEMPTS,
    autoCreateUsers: vars.OTP_AUTO_CREATE_USERS,
    previousSecrets: checkPreviousSecrets(vars.OTP_AUTH_PREVIOUS_SECRETS, secret),
    totpIssuer: vars.OTP_TOTP_ISSUER,
    introspectionApiKeys: checkIntrospectionApiKeys(vars.OTP_INTROSPECTION_API_KEYS),
    totpWindow: vars.OTP_TOTP_WINDOW,
    totpEnrollmentMaxAuthAge: vars.OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE,
    totpManagementMaxAuthAge: vars.OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE,
    logLevel,
    logLevels,
    platform: vars.HTTP_PLATFORM,
    webUi: vars.OTP_WEB_UI,
    production,
    warnings,
  };
  checkLibraryOptions(config, env);
  return config;
}

/** Where {@link loadConfigFromEnvironment} reads `.env` from. */
export interface EnvironmentSource {
  /** The .env file(s), relative to the working directory; `.env` by default. A missing file is skipped. */
  readonly envFilePath?: string | string[];
}

/**
 * Reads the sample app's configuration the way `main.ts` starts it: `@nestjs/config`'s
 * `ConfigModule` loads `.env` when the file exists, the real environment winning over it, and its
 * `validate` hook runs {@link loadConfig} on the merged variables. Variables from the file are then
 * in `process.env` too (the library reads `NODE_ENV` there), except those the environment already set.
 *
 * @param source - Which .env file to read.
 * @returns The validated configuration.
 * @throws Error from {@link loadConfig}, naming the offending variable.
 */
export async function loadConfigFromEnvironment(source: EnvironmentSource = {}): Promise<SampleConfig> {
  // validate runs synchronously inside forRoot, before it resolves (or its error rejects it).
  const loaded: { config?: SampleConfig } = {};
  await ConfigModule.forRoot({
    envFilePath: source.envFilePath ?? '.env',
    validate: (env: Environment) => {
      loaded.config = loadConfig(env);
      return env;
    },
  });
  if (loaded.config === undefined) throw new Error('ConfigModule did not run the environment check.');
  return loaded.config;
}

/** Library rate-limit options from the parsed `RATE_LIMIT_*` settings (unset ones keep the defaults). */
function rateLimitOptions(limits: RateLimitConfig): RateLimitOptions {
  const defined = <T extends object>(scopes: T): Partial<T> =>
    Object.fromEntries(Object.entries(scopes).filter(([, value]) => value !== undefined)) as Partial<T>;
  return {
    enabled: limits.enabled,
    onStorageError: limits.onRedisError,
    trustProxy: limits.trustProxy,
    send: defined(limits.send) as RateLimitOptions['send'],
    verify: defined(limits.verify) as RateLimitOptions['verify'],
  };
}

/**
 * The `OtpAuthModule` options that come from the environment. The app adds what exists only once
 * it runs (the store, the sender, Redis, event and claim callbacks).
 *
 * @param config - What {@link loadConfig} returned.
 * @returns The options, without `store`.
 */
export function otpAuthModuleOptions(config: SampleConfig): Omit<OtpAuthModuleOptions, 'store'> {
  return {
    secret: config.secret,
    previousSecrets: [...config.previousSecrets],
    delivery: {
      mode: config.deliveryMode,
      ...(config.deliveryDeadlineMs !== undefined ? { responseDeadline: config.deliveryDeadlineMs } : {}),
      ...(config.recipientLimit !== undefined
        ? { recipientLimit: config.recipientLimit === false ? false : [...config.recipientLimit] }
        : {}),
    },
    codeMode: config.codeMode,
    stateless: { window: config.statelessWindow, drift: config.statelessDrift },
    rateLimits: rateLimitOptions(config.rateLimits),
    developerMode: config.developerMode,
    accessTokenTtl: config.accessTokenTtl,
    refreshTokenTtl: config.refreshTokenTtl,
    sessionMaxAge: config.sessionMaxAge,
    sessionIdleTimeout: config.sessionIdleTimeout ?? false,
    otpTtl: config.otpTtl,
    resendCooldown: config.resendCooldown,
    maxAttempts: config.maxAttempts,
    autoCreateUser: config.autoCreateUsers,
    refreshTokenDelivery: config.refreshTokenDelivery,
    cookie: {
      secure: config.cookieSecure,
      sameSite: config.cookieSameSite,
      allowedOrigins: [...config.corsOrigins],
    },
    totp: {
      issuer: config.totpIssuer ?? 'OTP sample',
      window: config.totpWindow,
      // 0 turns the check off (the library's false).
      enrollmentMaxAuthAge: config.totpEnrollmentMaxAuthAge === 0 ? false : config.totpEnrollmentMaxAuthAge,
      managementMaxAuthAge: config.totpManagementMaxAuthAge === 0 ? false : config.totpManagementMaxAuthAge,
    },
    tokenEndpoints: { introspectionApiKeys: [...config.introspectionApiKeys] },
  };
}

/**
 * The variable behind each library option (or group of options) that {@link otpAuthModuleOptions}
 * fills in, so the library's messages can name what the operator sets.
 */
const OPTION_VARIABLES: Readonly<Record<string, string>> = {
  secret: 'OTP_AUTH_SECRET',
  previousSecrets: 'OTP_AUTH_PREVIOUS_SECRETS',
  developerMode: 'OTP_DEVELOPER_MODE',
  'delivery.mode': 'OTP_DELIVERY_MODE',
  'delivery.responseDeadline': 'OTP_DELIVERY_DEADLINE_MS',
  'delivery.recipientLimit': 'OTP_RECIPIENT_LIMIT',
  codeMode: 'OTP_CODE_MODE',
  'stateless.window': 'OTP_STATELESS_WINDOW',
  'stateless.drift': 'OTP_STATELESS_DRIFT',
  'rateLimits.enabled': 'RATE_LIMITS_ENABLED',
  'rateLimits.onStorageError': 'RATE_LIMIT_ON_REDIS_ERROR',
  'rateLimits.trustProxy': 'TRUST_PROXY',
  'rateLimits.send.perEmail': 'RATE_LIMIT_SEND_PER_EMAIL',
  'rateLimits.send.perEmailDaily': 'RATE_LIMIT_SEND_PER_EMAIL_DAILY',
  'rateLimits.send.perEmailTotal': 'RATE_LIMIT_SEND_PER_EMAIL_TOTAL',
  'rateLimits.send.perEmailDailyTotal': 'RATE_LIMIT_SEND_PER_EMAIL_DAILY_TOTAL',
  'rateLimits.send.perIp': 'RATE_LIMIT_SEND_PER_IP',
  'rateLimits.send.global': 'RATE_LIMIT_SEND_GLOBAL',
  'rateLimits.verify.perEmail': 'RATE_LIMIT_VERIFY_PER_EMAIL',
  'rateLimits.verify.perEmailTotal': 'RATE_LIMIT_VERIFY_PER_EMAIL_TOTAL',
  'rateLimits.verify.perIp': 'RATE_LIMIT_VERIFY_PER_IP',
  'rateLimits.verify.global': 'RATE_LIMIT_VERIFY_GLOBAL',
  accessTokenTtl: 'ACCESS_TOKEN_TTL',
  refreshTokenTtl: 'REFRESH_TOKEN_TTL',
  sessionMaxAge: 'SESSION_MAX_AGE',
  sessionIdleTimeout: 'SESSION_IDLE_TIMEOUT',
  otpTtl: 'OTP_TTL',
  resendCooldown: 'OTP_RESEND_COOLDOWN',
  maxAttempts: 'OTP_MAX_ATTEMPTS',
  autoCreateUser: 'OTP_AUTO_CREATE_USERS',
  refreshTokenDelivery: 'REFRESH_TOKEN_DELIVERY',
  'cookie.secure': 'COOKIE_SECURE',
  'cookie.sameSite': 'COOKIE_SAME_SITE',
  'cookie.allowedOrigins': 'CORS_ORIGINS',
  'totp.issuer': 'OTP_TOTP_ISSUER',
  'totp.window': 'OTP_TOTP_WINDOW',
  'totp.enrollmentMaxAuthAge': 'OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE',
  'totp.managementMaxAuthAge': 'OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE',
  'tokenEndpoints.introspectionApiKeys': 'OTP_INTROSPECTION_API_KEYS',
};

/** Longest first, so `rateLimits.send.perEmailDaily` is not taken for `rateLimits.send.perEmail`. */
const OPTION_PATHS = Object.keys(OPTION_VARIABLES).sort((a, b) => b.length - a.length);

/** The variable behind an option path, and what is left of the path below it (`.limit`, `[1].window`). */
function variableOf(path: string): { readonly name: string; readonly rest: string } | undefined {
  const option = OPTION_PATHS.find(
    (candidate) => path === candidate || (path.startsWith(candidate) && /^[.[]/.test(path.slice(candidate.length))),
  );
  const name = option === undefined ? undefined : OPTION_VARIABLES[option];
  return option === undefined || name === undefined ? undefined : { name, rest: path.slice(option.length) };
}

/** `.limit` or `[1].window` under a `<limit>/<window seconds>` variable, in the variable's terms. */
function describeRest(rest: string): string {
  if (rest === '') return '';
  const rule = /^(?:\[(\d+)\])?\.(limit|window)$/.exec(rest);
  if (!rule) return `\`${rest}\` `;
  const [, index, part] = rule;
  return `${index === undefined ? '' : `rule ${Number(index) + 1}: `}the ${part} `;
}

/**
 * The message of a configuration error for the operator: an `OtpAuthConfigurationError` about an
 * option the environment sets is reworded to name the variable
 * (`` OtpAuthModule: `otpTtl` must be ... `` becomes `OTP_TTL: must be ...`); any other error keeps
 * its message.
 *
 * @param error - What `loadConfig`, `resolveOtpAuthOptions` or app startup threw.
 * @returns One or more lines to print.
 */
export function describeConfigurationError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!(error instanceof OtpAuthConfigurationError)) return message;
  const text = message.replace(/^OtpAuthModule:\s*/, '');
  const subject = /^`([\w.[\]]+)`\s*/.exec(text);
  const variable = subject?.[1] === undefined ? undefined : variableOf(subject[1]);
  if (subject === null || variable === undefined) return message;
  // Other options the message mentions (`refreshTokenTtl` beside `sessionMaxAge`) by their variables too.
  const details = text.slice(subject[0].length).replace(/`([\w.[\]]+)`/g, (quoted, path: string) => {
    const other = variableOf(path);
    return other !== undefined && other.rest === '' ? other.name : quoted;
  });
  return `${variable.name}: ${describeRest(variable.rest)}${details}`;
}

/**
 * Stands in for the database store while the options are checked before any connection exists:
 * `resolveOtpAuthOptions` only looks for the store's methods and never calls them.
 */
const UNCONNECTED_STORE = new Proxy({} as OtpAuthStore, {
  get: () => () => Promise.reject(new Error('the sample app checks its options before it connects a store')),
});

/** Runs the library's own validation on the options the environment makes, at load time rather than at startup. */
function checkLibraryOptions(config: SampleConfig, env: Environment): void {
  try {
    resolveOtpAuthOptions(
      { ...otpAuthModuleOptions(config), store: UNCONNECTED_STORE },
      undefined,
      { NODE_ENV: env['NODE_ENV'] },
      'factory',
    );
  } catch (error) {
    if (error instanceof OtpAuthConfigurationError)
      throw new Error(describeConfigurationError(error), { cause: error });
    throw error;
  }
}
