/**
 * The shape of the sample app's environment, as a zod schema: types, choices, URLs, lists and the
 * `<limit>/<window>` syntax. The library's numeric bounds are not repeated here: `loadConfig` hands
 * the numbers to `resolveOtpAuthOptions`, which owns them. What NODE_ENV=production refuses or
 * warns about, and checks across variables other than the delivery's, are in `config.ts`.
 *
 * @packageDocumentation
 */
import { z } from 'zod';

/** Trims a value; blank counts as unset (`FOO=` in a .env file means "unset"). */
function blankAsUnset(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** A variable that may be left unset (then undefined). */
function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess(blankAsUnset, schema.optional());
}

/** A variable with a default, written as the value it stands for and parsed like one. */
function withDefault<T extends z.ZodType>(schema: T, fallback: string) {
  return z.preprocess((value) => blankAsUnset(value) ?? fallback, schema);
}

/** The custom issue a transform reports; `input` is echoed by messages that say what they got. */
function issue(ctx: z.RefinementCtx, message: string, input: unknown): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message, input });
  return z.NEVER;
}

/** `true`, `false`, `1` or `0`, any case. */
function flag() {
  return z.stringbool({
    truthy: ['true', '1'],
    falsy: ['false', '0'],
    case: 'insensitive',
    error: (problem) => `must be true, false, 1 or 0 (got "${String(problem.input)}").`,
  });
}

/** One of `values`, any case; the value comes out lower-cased. */
function choice<const T extends readonly [string, ...string[]]>(values: T) {
  return z.string().transform((value, ctx): T[number] => {
    const match = values.find((candidate) => candidate === value.toLowerCase());
    return match ?? issue(ctx, `must be one of ${values.join(', ')} (got "${value}").`, value);
  });
}

/** Digits only: Number() would accept "1e3", "0x10" and " 12 ". */
const DIGITS = /^\d+$/;

/** A whole number of digits; its range is the library's to check. */
function count() {
  return z
    .string()
    .transform((value, ctx): number =>
      DIGITS.test(value) ? Number(value) : issue(ctx, `must be a non-negative integer (got "${value}").`, value),
    );
}

/** A whole number in a range the sample itself sets (a port, a timeout: not library options). */
function integerFrom(min: number, max: number) {
  return z.string().transform((value, ctx): number => {
    const parsed = DIGITS.test(value) ? Number(value) : NaN;
    return parsed >= min && parsed <= max
      ? parsed
      : issue(ctx, `must be an integer from ${min} to ${max} (got "${value}").`, value);
  });
}

/** A comma-separated list, entries trimmed, empty ones dropped. */
function splitList(value: string): string[] {
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** A comma-separated list; [] when unset. */
function list() {
  return withDefault(z.string().transform(splitList), '');
}

/** A request limit: `<limit>/<window seconds>`. */
const RULE = /^(\d+)\/(\d+)$/;

/** A parsed `<limit>/<window seconds>`. */
interface Rule {
  readonly limit: number;
  readonly window: number;
}

/** `limit`/`window` of a `<limit>/<window seconds>` rule, or undefined when it is not one. */
function parseRule(value: string): Rule | undefined {
  const match = RULE.exec(value);
  return match ? { limit: Number(match[1]), window: Number(match[2]) } : undefined;
}

/** `RATE_LIMIT_*`: `<limit>/<window seconds>` (e.g. `5/600`), or `off` (false). */
function limitSetting() {
  return z.string().transform((value, ctx) => {
    if (value.toLowerCase() === 'off') return false as const;
    return (
      parseRule(value) ?? issue(ctx, `must be <limit>/<window seconds> such as 5/600, or off (got "${value}").`, value)
    );
  });
}

/** `OTP_RECIPIENT_LIMIT`: `off`, or comma-separated `<limit>/<window seconds>` rules (`5/600,20/86400`). */
function recipientLimit() {
  return z.string().transform((value, ctx) => {
    if (value.toLowerCase() === 'off') return false as const;
    const rules = value.split(',').map((part) => parseRule(part.trim()));
    return rules.every((rule): rule is Rule => rule !== undefined)
      ? rules
      : issue(ctx, `must be off or <limit>/<window seconds> rules such as 5/600,20/86400 (got "${value}").`, value);
  });
}

/** `TRUST_PROXY`: false, a hop count, or proxy addresses/CIDRs (which the library parses). */
function trustProxy() {
  return z.string().transform((value, ctx): false | number | string[] => {
    const lower = value.toLowerCase();
    if (lower === 'false') return false;
    if (/^\d{1,2}$/.test(value)) return Number(value);
    if (lower === 'true') {
      return issue(
        ctx,
        '`true` would let any client choose its IP; give the hop count (e.g. 1) or the proxy addresses/CIDRs.',
        value,
      );
    }
    return splitList(value);
  });
}

/** An absolute URL with one of `schemes` (`https?` for http and https) and a host. */
function hasScheme(url: string, schemes: string): boolean {
  return new RegExp(`^(?:${schemes})://[^/]`, 'i').test(url) && URL.canParse(url);
}

/** A URL of one of `schemes`; messages never echo it, since URLs can carry credentials or tokens. */
function url(schemes: string, message: string) {
  return z.string({ error: message }).refine((value) => hasScheme(value, schemes), { error: message });
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
  const [, scheme = '', credentials = '', hosts = '', rest = ''] = parts;
  const list = hosts.split(',');
  if (list.length > 1 && scheme.toLowerCase() === 'mongodb+srv://') return false; // SRV names one host
  return list.every((host) => host !== '' && URL.canParse(`${scheme}${credentials}${host}${rest}`));
}

/** `DATABASE_URL` as the persistence module takes it. Messages name the scheme only, so passwords never reach logs. */
function databaseUrl() {
  return z.string().transform((url, ctx) => {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
    const invalid = () => issue(ctx, `is not a valid ${scheme}:// URL; accepted: ${DATABASE_URL_FORMS}.`, undefined);
    if (scheme === 'sqlite') {
      const path = url.slice('sqlite:'.length);
      if (path === '') {
        return issue(ctx, `"sqlite:" needs a file path or :memory:; accepted: ${DATABASE_URL_FORMS}.`, undefined);
      }
      return { type: 'better-sqlite3' as const, database: path };
    }
    if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'mysql' || scheme === 'mariadb') {
      if (!URL.canParse(url)) return invalid();
      // TypeORM takes the driver name from the URL's scheme, so normalize the aliases.
      const rest = url.slice(scheme.length);
      return scheme.startsWith('postgres')
        ? { type: 'postgres' as const, url: `postgres${rest}` }
        : { type: 'mysql' as const, url: `mysql${rest}` };
    }
    if (scheme === 'mongodb' || scheme === 'mongodb+srv') {
      return isMongoUrl(url) ? { type: 'mongodb' as const, url } : invalid();
    }
    return issue(
      ctx,
      `${scheme ? `the scheme "${scheme}:" is not supported` : 'not a URL'}; accepted: ${DATABASE_URL_FORMS}.`,
      undefined,
    );
  });
}

/** An origin is scheme, host and port only: what browsers send in `Origin`. */
function isOrigin(origin: string): boolean {
  const parsed = URL.canParse(origin) ? new URL(origin) : undefined;
  return parsed !== undefined && /^https?:$/.test(parsed.protocol) && parsed.origin === origin;
}

function origins() {
  return list().superRefine((entries, ctx) => {
    for (const origin of entries.filter((entry) => !isOrigin(entry))) {
      ctx.addIssue({
        code: 'custom',
        input: origin,
        message: `"${origin}" is not an origin; give scheme and host (and port), e.g. https://app.example.com, with no path or trailing slash.`,
      });
    }
  });
}

function totpIssuer() {
  // The key URI format uses ':' to separate issuer and account.
  return z.string().refine((issuer) => !issuer.includes(':') && issuer.length <= 64, {
    error: (problem) => `may not contain ":" and is at most 64 characters (got "${String(problem.input)}").`,
  });
}

const DELIVERY_KINDS = ['console', 'webhook', 'smtp', 'sms'] as const;

/** What each `OTP_DELIVERY` needs; the other deliveries' variables are not read, so not checked either. */
const DELIVERY_VARIABLES = {
  console: z.object({}).transform(() => ({ kind: 'console' as const })),
  smtp: z
    .object({
      SMTP_URL: url('smtps?', 'is required when OTP_DELIVERY=smtp: smtp://user:pass@host:587 or smtps://host:465.'),
      SMTP_FROM: z.string({ error: 'is required when OTP_DELIVERY=smtp, e.g. "Acme <no-reply@acme.example>".' }),
      SMTP_REQUIRE_TLS: flag().optional(),
    })
    .transform((env) => ({
      kind: 'smtp' as const,
      url: env.SMTP_URL,
      from: env.SMTP_FROM,
      requireTls: env.SMTP_REQUIRE_TLS,
    })),
  sms: z
    .object({
      SMS_ACCOUNT_SID: z.string({ error: 'is required when OTP_DELIVERY=sms (Twilio credentials).' }),
      SMS_AUTH_TOKEN: z.string({ error: 'is required when OTP_DELIVERY=sms (Twilio credentials).' }),
      SMS_FROM: z.string().optional(),
      SMS_MESSAGING_SERVICE_SID: z.string().optional(),
      SMS_BASE_URL: url('https?', 'must be an http(s) URL, e.g. https://api.twilio.com.').optional(),
    })
    .refine((env) => (env.SMS_FROM === undefined) !== (env.SMS_MESSAGING_SERVICE_SID === undefined), {
      error: 'OTP_DELIVERY=sms needs exactly one of SMS_FROM (a phone number) and SMS_MESSAGING_SERVICE_SID.',
    })
    .transform((env) => ({
      kind: 'sms' as const,
      accountSid: env.SMS_ACCOUNT_SID,
      authToken: env.SMS_AUTH_TOKEN,
      from: env.SMS_FROM,
      messagingServiceSid: env.SMS_MESSAGING_SERVICE_SID,
      baseUrl: env.SMS_BASE_URL,
    })),
  webhook: z
    .object({
      OTP_WEBHOOK_URL: z
        .string({ error: 'is required when OTP_DELIVERY=webhook (an http:// or https:// URL).' })
        .refine((value) => hasScheme(value, 'https?'), {
          error: 'must be an http:// or https:// URL, e.g. https://hooks.example.com/otp.',
        }),
      OTP_WEBHOOK_SECRET: z.string({
        error: 'is required when OTP_DELIVERY=webhook; share it with the receiver (e.g. `openssl rand -hex 32`).',
      }),
    })
    .transform((env) => ({ kind: 'webhook' as const, url: env.OTP_WEBHOOK_URL, secret: env.OTP_WEBHOOK_SECRET })),
} as const satisfies Record<(typeof DELIVERY_KINDS)[number], z.ZodType>;

/** Kept as trimmed text until `OTP_DELIVERY` says whether they are read. */
const deliveryText = optional(z.string());

/**
 * The sample app's environment variables (README, "Sample app"). Parsed values come out typed;
 * `OTP_DELIVERY` comes out as the chosen delivery with its settings. Unset optional library
 * settings stay undefined so the library's defaults apply; unknown variables are ignored.
 */
export const environmentSchema = z
  .object({
    NODE_ENV: optional(z.string()),
    PORT: withDefault(integerFrom(1, 65535), '3000'),
    DATABASE_URL: withDefault(databaseUrl(), 'sqlite:./data/sample.sqlite'),
    DATABASE_TIMEOUT: withDefault(integerFrom(1, 600), '5'),
    DATABASE_SYNCHRONIZE: withDefault(flag(), 'true'),
    OTP_AUTH_SECRET: optional(z.string()),
    OTP_AUTH_PREVIOUS_SECRETS: list(),
    OTP_DEVELOPER_MODE: optional(flag()),
    OTP_DELIVERY: withDefault(choice(DELIVERY_KINDS), 'console'),
    OTP_DELIVERY_MODE: optional(choice(['inline', 'outbox'])),
    OTP_DELIVERY_DEADLINE_MS: optional(count()),
    OTP_RECIPIENT_LIMIT: optional(recipientLimit()),
    OTP_APP_NAME: withDefault(z.string(), 'OTP sample'),
    SMTP_URL: deliveryText,
    SMTP_FROM: deliveryText,
    SMTP_REQUIRE_TLS: deliveryText,
    SMS_ACCOUNT_SID: deliveryText,
    SMS_AUTH_TOKEN: deliveryText,
    SMS_FROM: deliveryText,
    SMS_MESSAGING_SERVICE_SID: deliveryText,
    SMS_BASE_URL: deliveryText,
    OTP_WEBHOOK_URL: deliveryText,
    OTP_WEBHOOK_SECRET: deliveryText,
    REDIS_URL: optional(url('rediss?', 'must be redis://[user:pass@]host:6379[/db] or rediss://...')),
    REDIS_KEY_PREFIX: withDefault(z.string(), 'otp:'),
    RATE_LIMITS_ENABLED: withDefault(flag(), 'true'),
    RATE_LIMIT_ON_REDIS_ERROR: withDefault(choice(['local', 'fail-closed', 'fail-open']), 'local'),
    TRUST_PROXY: withDefault(trustProxy(), 'false'),
    RATE_LIMIT_SEND_PER_EMAIL: optional(limitSetting()),
    RATE_LIMIT_SEND_PER_EMAIL_DAILY: optional(limitSetting()),
    RATE_LIMIT_SEND_PER_EMAIL_TOTAL: optional(limitSetting()),
    RATE_LIMIT_SEND_PER_EMAIL_DAILY_TOTAL: optional(limitSetting()),
    RATE_LIMIT_SEND_PER_IP: optional(limitSetting()),
    RATE_LIMIT_SEND_GLOBAL: optional(limitSetting()),
    RATE_LIMIT_VERIFY_PER_EMAIL: optional(limitSetting()),
    RATE_LIMIT_VERIFY_PER_EMAIL_TOTAL: optional(limitSetting()),
    RATE_LIMIT_VERIFY_PER_IP: optional(limitSetting()),
    RATE_LIMIT_VERIFY_GLOBAL: optional(limitSetting()),
    OTP_CODE_MODE: withDefault(choice(['stored', 'stateless']), 'stored'),
    OTP_STATELESS_WINDOW: optional(count()),
    OTP_STATELESS_DRIFT: optional(count()),
    REFRESH_TOKEN_DELIVERY: withDefault(choice(['cookie', 'body', 'both']), 'cookie'),
    COOKIE_SECURE: withDefault(flag(), 'true'),
    COOKIE_SAME_SITE: withDefault(choice(['strict', 'lax', 'none']), 'strict'),
    CORS_ORIGINS: origins(),
    ACCESS_TOKEN_TTL: optional(count()),
    REFRESH_TOKEN_TTL: optional(count()),
    SESSION_MAX_AGE: optional(count()),
    SESSION_IDLE_TIMEOUT: optional(count()),
    OTP_TTL: optional(count()),
    OTP_RESEND_COOLDOWN: optional(count()),
    OTP_MAX_ATTEMPTS: optional(count()),
    OTP_AUTO_CREATE_USERS: withDefault(flag(), 'true'),
    OTP_TOTP_ISSUER: optional(totpIssuer()),
    OTP_INTROSPECTION_API_KEYS: list(),
    OTP_TOTP_WINDOW: optional(count()),
    OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE: optional(count()),
    OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE: optional(count()),
    LOG_LEVEL: withDefault(choice(['error', 'warn', 'log', 'debug', 'verbose']), 'log'),
    HTTP_PLATFORM: withDefault(choice(['express', 'fastify']), 'express'),
    OTP_WEB_UI: withDefault(flag(), 'true'),
  })
  // Runs once every variable has its shape: only then is OTP_DELIVERY known.
  .transform((env, ctx) => {
    const delivery = DELIVERY_VARIABLES[env.OTP_DELIVERY].safeParse(env);
    if (!delivery.success) {
      for (const problem of delivery.error.issues) {
        ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message, input: undefined });
      }
      return z.NEVER;
    }
    return { ...env, OTP_DELIVERY: delivery.data };
  });

/** The environment after {@link environmentSchema}: each variable typed, defaults filled in. */
export type SampleEnvironment = z.output<typeof environmentSchema>;

/**
 * Checks the environment's shape with {@link environmentSchema}.
 *
 * @param env - The variables, e.g. `process.env` (blank values count as unset).
 * @returns The typed variables.
 * @throws Error listing every malformed variable, one per line, as `NAME: what it must be`.
 */
export function parseEnvironment(env: Readonly<Record<string, string | undefined>>): SampleEnvironment {
  const result = environmentSchema.safeParse(env);
  if (result.success) return result.data;
  throw new Error(
    result.error.issues
      .map((problem) =>
        problem.path.length > 0 ? `${problem.path.map(String).join('.')}: ${problem.message}` : problem.message,
      )
      .join('\n'),
  );
}
