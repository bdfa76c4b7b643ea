import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OtpAuthConfigurationError, resolveOtpAuthOptions, type OtpAuthStore } from 'nestjs-otp-auth';
import {
  describeConfigurationError,
  loadConfig,
  loadConfigFromEnvironment,
  otpAuthModuleOptions,
  type Environment,
} from './config.js';

const SECRET = 'sample-config-secret-0123456789abcdef0123456789abcdef012345';
/** What production needs besides the variable under test. */
const PRODUCTION: Environment = {
  NODE_ENV: 'production',
  OTP_AUTH_SECRET: SECRET,
  OTP_DELIVERY: 'webhook',
  OTP_WEBHOOK_URL: 'https://hooks.example.com/otp',
  OTP_WEBHOOK_SECRET: 'a-webhook-secret-of-at-least-32-characters',
};

/** The error `loadConfig(env)` throws; fails the test when it returns. */
function errorOf(env: Environment): Error {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  describe('defaults (empty environment)', () => {
    it('listens on 3000 over Express, keeps SQLite data in ./data, prints codes, secure cookies', () => {
      const config = loadConfig({});
      expect(config).toMatchObject({
        port: 3000,
        database: { type: 'better-sqlite3', database: './data/sample.sqlite' },
        delivery: { kind: 'console' },
        platform: 'express',
        webUi: true,
        cookieSecure: true,
        refreshTokenDelivery: 'cookie',
        developerMode: undefined,
        accessTokenTtl: undefined,
        refreshTokenTtl: undefined,
        sessionMaxAge: undefined,
        sessionIdleTimeout: undefined,
        otpTtl: undefined,
        resendCooldown: undefined,
        maxAttempts: undefined,
        logLevel: 'log',
        logLevels: ['fatal', 'error', 'warn', 'log'],
        production: false,
      });
    });

    it('generates a 64-hex-character secret outside production and warns about it', () => {
      const config = loadConfig({});
      expect(config.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(config.secretGenerated).toBe(true);
      expect(config.warnings.join('\n')).toContain('OTP_AUTH_SECRET');
    });

    it('generates a different secret on every call', () => {
      expect(loadConfig({}).secret).not.toBe(loadConfig({}).secret);
    });

    it('treats blank values as unset', () => {
      const config = loadConfig({ PORT: '', DATABASE_URL: '  ', OTP_AUTH_SECRET: '' });
      expect(config.port).toBe(3000);
      expect(config.database).toEqual({ type: 'better-sqlite3', database: './data/sample.sqlite' });
      expect(config.secretGenerated).toBe(true);
    });
  });

  describe('parsing each variable', () => {
    it('PORT', () => {
      expect(loadConfig({ PORT: '8080' }).port).toBe(8080);
      expect(loadConfig({ PORT: '1' }).port).toBe(1);
      expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
    });

    it.each([
      ['sqlite:./var/db.sqlite', { type: 'better-sqlite3', database: './var/db.sqlite' }],
      ['sqlite:/abs/path.db', { type: 'better-sqlite3', database: '/abs/path.db' }],
      ['sqlite::memory:', { type: 'better-sqlite3', database: ':memory:' }],
      ['postgres://u:p@db:5432/app', { type: 'postgres', url: 'postgres://u:p@db:5432/app' }],
      ['postgresql://u:p@db:5432/app', { type: 'postgres', url: 'postgres://u:p@db:5432/app' }],
      ['mysql://u:p@db:3306/app', { type: 'mysql', url: 'mysql://u:p@db:3306/app' }],
      ['mariadb://u:p@db:3306/app', { type: 'mysql', url: 'mysql://u:p@db:3306/app' }],
      ['mongodb://u:p@db:27017/app', { type: 'mongodb', url: 'mongodb://u:p@db:27017/app' }],
      [
        'mongodb://u:p@h1:27017,h2:27017,h3:27017/app?replicaSet=rs0',
        { type: 'mongodb', url: 'mongodb://u:p@h1:27017,h2:27017,h3:27017/app?replicaSet=rs0' },
      ],
      ['mongodb://[::1]:27017,[::1]:27018/app', { type: 'mongodb', url: 'mongodb://[::1]:27017,[::1]:27018/app' }],
      [
        'mongodb+srv://u:p@cluster.example.net/app',
        { type: 'mongodb', url: 'mongodb+srv://u:p@cluster.example.net/app' },
      ],
    ])('DATABASE_URL=%s', (url, expected) => {
      expect(loadConfig({ DATABASE_URL: url }).database).toEqual(expected);
    });

    it('OTP_AUTH_SECRET', () => {
      const config = loadConfig({ OTP_AUTH_SECRET: SECRET });
      expect(config.secret).toBe(SECRET);
      expect(config.secretGenerated).toBe(false);
      expect(config.warnings).toEqual([]);
    });

    it('CORS_ORIGINS, comma-separated origins, and COOKIE_SAME_SITE', () => {
      const config = loadConfig({
        CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
        COOKIE_SAME_SITE: 'None',
      });
      expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
      expect(config.cookieSameSite).toBe('none');
      expect(loadConfig({}).corsOrigins).toEqual([]);
      const production = loadConfig({
        NODE_ENV: 'production',
        OTP_AUTH_SECRET: SECRET,
        OTP_DELIVERY: 'webhook',
        OTP_WEBHOOK_URL: 'https://hooks.example.com/otp',
        OTP_WEBHOOK_SECRET: 'a-webhook-secret-of-at-least-32-characters',
        CORS_ORIGINS: 'http://app.example.com',
      });
      expect(production.warnings.join(' ')).toContain('plain-HTTP origins (http://app.example.com)');
      // COOKIE_SECURE=false and table synchronisation are allowed in production, but said aloud.
      const loose = loadConfig({ ...PRODUCTION, COOKIE_SECURE: 'false', DATABASE_URL: 'postgres://db/app' });
      expect(loose.warnings.join(' ')).toContain('COOKIE_SECURE=false in production');
      expect(loose.warnings.join(' ')).toContain('DATABASE_SYNCHRONIZE is on in production');
      expect(loose.databaseSynchronize).toBe(true);
      const migrated = loadConfig({ ...PRODUCTION, DATABASE_SYNCHRONIZE: 'false' });
      expect(migrated.databaseSynchronize).toBe(false);
      expect(migrated.warnings.join(' ')).not.toContain('DATABASE_SYNCHRONIZE');
      expect(loadConfig({}).cookieSameSite).toBe('strict');
    });

    it('OTP_AUTH_PREVIOUS_SECRETS, comma-separated, and OTP_TOTP_ISSUER', () => {
      const old = 'o'.repeat(40);
      const config = loadConfig({ OTP_AUTH_SECRET: SECRET, OTP_AUTH_PREVIOUS_SECRETS: ` ${old} ,, ${'p'.repeat(32)}` });
      expect(config.previousSecrets).toEqual([old, 'p'.repeat(32)]);
      expect(loadConfig({}).previousSecrets).toEqual([]);
      expect(loadConfig({ OTP_TOTP_ISSUER: 'Acme Corp' }).totpIssuer).toBe('Acme Corp');
      const key = 'k'.repeat(32);
      expect(loadConfig({ OTP_INTROSPECTION_API_KEYS: `${key}, ${key}2` }).introspectionApiKeys).toEqual([
        key,
        `${key}2`,
      ]);
    });

    it('OTP_DELIVERY=smtp and sms, REDIS_URL, rate limits, trusted proxies and the code mode', () => {
      expect(
        loadConfig({ OTP_DELIVERY: 'smtp', SMTP_URL: 'smtp://u:p@mail:587', SMTP_FROM: 'A <a@b.c>' }).delivery,
      ).toEqual({ kind: 'smtp', url: 'smtp://u:p@mail:587', from: 'A <a@b.c>' });
      expect(
        loadConfig({
          OTP_DELIVERY: 'sms',
          SMS_ACCOUNT_SID: 'AC1',
          SMS_AUTH_TOKEN: 't',
          SMS_MESSAGING_SERVICE_SID: 'MG1',
        }).delivery,
      ).toMatchObject({ kind: 'sms', messagingServiceSid: 'MG1', from: undefined });
      expect(loadConfig({ REDIS_URL: 'redis://cache:6379/2' }).redisUrl).toBe('redis://cache:6379/2');
      const limits = loadConfig({
        RATE_LIMIT_SEND_PER_EMAIL: '3/300',
        RATE_LIMIT_VERIFY_GLOBAL: 'off',
        RATE_LIMIT_ON_REDIS_ERROR: 'fail-closed',
        TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
      }).rateLimits;
      expect(limits.send.perEmail).toEqual({ limit: 3, window: 300 });
      expect(limits.send.perIp).toBeUndefined();
      expect(limits.verify.global).toBe(false);
      expect(limits.onRedisError).toBe('fail-closed');
      expect(limits.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
      expect(loadConfig({ TRUST_PROXY: '1' }).rateLimits.trustProxy).toBe(1);
      expect(loadConfig({ OTP_CODE_MODE: 'stateless', OTP_STATELESS_WINDOW: '120' })).toMatchObject({
        codeMode: 'stateless',
        statelessWindow: 120,
      });
    });

    it('OTP_DELIVERY=webhook with OTP_WEBHOOK_URL and OTP_WEBHOOK_SECRET', () => {
      const config = loadConfig({
        OTP_DELIVERY: 'webhook',
        OTP_WEBHOOK_URL: 'http://127.0.0.1:9000/hook',
        OTP_WEBHOOK_SECRET: 'shared',
      });
      expect(config.delivery).toEqual({ kind: 'webhook', url: 'http://127.0.0.1:9000/hook', secret: 'shared' });
      expect(loadConfig({ OTP_DELIVERY: 'console' }).delivery).toEqual({ kind: 'console' });
    });

    it('OTP_DELIVERY_MODE defaults to outbox for SMS; OTP_DELIVERY_DEADLINE_MS and OTP_RECIPIENT_LIMIT', () => {
      const sms = { OTP_DELIVERY: 'sms', SMS_ACCOUNT_SID: 'AC1', SMS_AUTH_TOKEN: 't', SMS_FROM: '+15005550006' };
      expect(loadConfig(sms).deliveryMode).toBe('outbox');
      expect(loadConfig({ ...sms, OTP_DELIVERY_MODE: 'inline' }).deliveryMode).toBe('inline');
      expect(loadConfig({}).deliveryMode).toBe('inline');
      expect(loadConfig({}).deliveryDeadlineMs).toBeUndefined();
      expect(loadConfig({ OTP_DELIVERY_DEADLINE_MS: '250' }).deliveryDeadlineMs).toBe(250);
      expect(loadConfig({}).recipientLimit).toBeUndefined();
      expect(loadConfig({ OTP_RECIPIENT_LIMIT: 'off' }).recipientLimit).toBe(false);
      expect(loadConfig({ OTP_RECIPIENT_LIMIT: '3/600, 10/86400' }).recipientLimit).toEqual([
        { limit: 3, window: 600 },
        { limit: 10, window: 86_400 },
      ]);
    });

    it('SMTP_REQUIRE_TLS: unset keeps the sender default; false allows clear text, with a warning in production to another host', () => {
      const smtp: Environment = { OTP_DELIVERY: 'smtp', SMTP_URL: 'smtp://mailpit:1025', SMTP_FROM: 'a@b.test' };
      const tlsWarning = (env: Environment) =>
        loadConfig(env).warnings.filter((warning) => warning.includes('SMTP_REQUIRE_TLS'));
      expect(loadConfig(smtp).delivery).toMatchObject({ kind: 'smtp', requireTls: undefined });
      expect(loadConfig({ ...smtp, SMTP_REQUIRE_TLS: 'true' }).delivery).toMatchObject({ requireTls: true });
      expect(loadConfig({ ...smtp, SMTP_REQUIRE_TLS: 'FALSE' }).delivery).toMatchObject({ requireTls: false });
      expect(tlsWarning({ ...smtp, SMTP_REQUIRE_TLS: 'false' })).toEqual([]); // not production

      const production: Environment = { ...PRODUCTION, ...smtp, NODE_ENV: ' Production ' };
      expect(tlsWarning(production)).toEqual([]); // the default requires TLS
      const [warning, ...more] = tlsWarning({ ...production, SMTP_REQUIRE_TLS: 'false' });
      expect(more).toEqual([]);
      expect(warning).toMatch(/^SMTP_REQUIRE_TLS=false in production .*clear text/);
      // Nothing crosses a network to this host, and smtps:// is TLS whatever the setting.
      for (const url of [
        'smtp://127.0.0.1:1025',
        'smtp://LocalHost:1025',
        'smtp://[::1]:1025',
        'smtps://u:p@mail.example.com:465',
      ]) {
        expect(tlsWarning({ ...production, SMTP_URL: url, SMTP_REQUIRE_TLS: 'false' })).toEqual([]);
      }
    });

    it.each(['cookie', 'body', 'both'] as const)('REFRESH_TOKEN_DELIVERY=%s', (mode) => {
      expect(loadConfig({ REFRESH_TOKEN_DELIVERY: mode }).refreshTokenDelivery).toBe(mode);
    });

    it.each([
      ['false', false],
      ['0', false],
      ['FALSE', false],
      ['true', true],
      ['1', true],
    ])('COOKIE_SECURE=%s', (value, expected) => {
      expect(loadConfig({ COOKIE_SECURE: value }).cookieSecure).toBe(expected);
    });

    it.each([
      ['ACCESS_TOKEN_TTL', '900', 'accessTokenTtl'],
      ['REFRESH_TOKEN_TTL', '86400', 'refreshTokenTtl'],
      ['SESSION_MAX_AGE', '604800', 'sessionMaxAge'],
      ['SESSION_IDLE_TIMEOUT', '1800', 'sessionIdleTimeout'],
      ['OTP_TTL', '300', 'otpTtl'],
      ['OTP_RESEND_COOLDOWN', '30', 'resendCooldown'],
      ['OTP_RESEND_COOLDOWN', '0', 'resendCooldown'],
      ['OTP_MAX_ATTEMPTS', '3', 'maxAttempts'],
      ['OTP_TOTP_WINDOW', '0', 'totpWindow'],
      ['OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE', '0', 'totpEnrollmentMaxAuthAge'],
      ['OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE', '3600', 'totpEnrollmentMaxAuthAge'],
      ['OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE', '0', 'totpManagementMaxAuthAge'],
      ['OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE', '300', 'totpManagementMaxAuthAge'],
    ] as const)('%s', (name, value, field) => {
      expect(loadConfig({ [name]: value })[field]).toBe(Number(value));
    });

    it.each([
      ['error', ['fatal', 'error']],
      ['warn', ['fatal', 'error', 'warn']],
      ['log', ['fatal', 'error', 'warn', 'log']],
      ['debug', ['fatal', 'error', 'warn', 'log', 'debug']],
      ['verbose', ['fatal', 'error', 'warn', 'log', 'debug', 'verbose']],
    ])('LOG_LEVEL=%s', (level, levels) => {
      const config = loadConfig({ LOG_LEVEL: level });
      expect(config.logLevel).toBe(level);
      expect(config.logLevels).toEqual(levels);
    });

    it('HTTP_PLATFORM, trimmed and case-insensitive', () => {
      expect(loadConfig({ HTTP_PLATFORM: 'fastify' }).platform).toBe('fastify');
      expect(loadConfig({ HTTP_PLATFORM: ' Fastify ' }).platform).toBe('fastify');
      expect(loadConfig({ HTTP_PLATFORM: 'express' }).platform).toBe('express');
    });

    it('OTP_WEB_UI', () => {
      expect(loadConfig({ OTP_WEB_UI: 'false' }).webUi).toBe(false);
      expect(loadConfig({ OTP_WEB_UI: '0' }).webUi).toBe(false);
      expect(loadConfig({ OTP_WEB_UI: 'TRUE' }).webUi).toBe(true);
      expect(errorOf({ OTP_WEB_UI: 'off' }).message).toBe('OTP_WEB_UI: must be true, false, 1 or 0 (got "off").');
    });

    it('OTP_DEVELOPER_MODE', () => {
      expect(loadConfig({ OTP_DEVELOPER_MODE: 'true' }).developerMode).toBe(true);
      expect(loadConfig({ OTP_DEVELOPER_MODE: 'false' }).developerMode).toBe(false);
      // Developer mode lets a short secret through (the library relaxes the same check).
      expect(loadConfig({ OTP_DEVELOPER_MODE: 'true', OTP_AUTH_SECRET: 'short' }).secret).toBe('short');
    });

    it('NODE_ENV=production with everything production needs', () => {
      const config = loadConfig(PRODUCTION);
      expect(config.production).toBe(true);
      expect(config.secret).toBe(SECRET);
      expect(config.delivery.kind).toBe('webhook');
      // A receiver on this host (a sidecar) may be plain HTTP: nothing crosses a network.
      expect(loadConfig({ ...PRODUCTION, OTP_WEBHOOK_URL: 'http://127.0.0.1:9000/otp' }).production).toBe(true);
      expect(loadConfig({ ...PRODUCTION, NODE_ENV: 'Production' }).production).toBe(true);
    });
  });

  it('accepts .env.example as it is shipped', () => {
    const env: Record<string, string> = {};
    for (const line of readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8').split('\n')) {
      const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (match) env[match[1]!] = match[2]!;
    }
    expect(Object.keys(env).length).toBeGreaterThan(30);
    expect(() => loadConfig(env)).not.toThrow();
  });

  describe('refusing bad values with an error that names the variable', () => {
    it.each<[string, Environment, string]>([
      ['PORT=abc', { PORT: 'abc' }, 'PORT'],
      ['PORT=70000', { PORT: '70000' }, 'PORT'],
      ['PORT=0', { PORT: '0' }, 'PORT'],
      ['DATABASE_URL=ftp://x', { DATABASE_URL: 'ftp://x' }, 'DATABASE_URL'],
      ['DATABASE_URL=sqlite:', { DATABASE_URL: 'sqlite:' }, 'DATABASE_URL'],
      ['DATABASE_URL=not a url', { DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
      ['OTP_DELIVERY=pigeon', { OTP_DELIVERY: 'pigeon' }, 'OTP_DELIVERY'],
      ['OTP_DELIVERY_DEADLINE_MS=0', { OTP_DELIVERY_DEADLINE_MS: '0' }, 'OTP_DELIVERY_DEADLINE_MS'],
      ['OTP_DELIVERY_DEADLINE_MS=1.5', { OTP_DELIVERY_DEADLINE_MS: '1.5' }, 'OTP_DELIVERY_DEADLINE_MS'],
      ['OTP_RECIPIENT_LIMIT=5', { OTP_RECIPIENT_LIMIT: '5' }, 'OTP_RECIPIENT_LIMIT'],
      ['smtp without SMTP_URL', { OTP_DELIVERY: 'smtp', SMTP_FROM: 'a@b.c' }, 'SMTP_URL'],
      ['smtp without SMTP_FROM', { OTP_DELIVERY: 'smtp', SMTP_URL: 'smtp://mail:25' }, 'SMTP_FROM'],
      ['sms without credentials', { OTP_DELIVERY: 'sms', SMS_FROM: '+15005550006' }, 'SMS_ACCOUNT_SID'],
      ['sms without a sender', { OTP_DELIVERY: 'sms', SMS_ACCOUNT_SID: 'AC1', SMS_AUTH_TOKEN: 't' }, 'SMS_FROM'],
      ['REDIS_URL=http://x', { REDIS_URL: 'http://x' }, 'REDIS_URL'],
      ['RATE_LIMIT_SEND_PER_IP=lots', { RATE_LIMIT_SEND_PER_IP: 'lots' }, 'RATE_LIMIT_SEND_PER_IP'],
      ['RATE_LIMIT_VERIFY_PER_EMAIL=0/60', { RATE_LIMIT_VERIFY_PER_EMAIL: '0/60' }, 'RATE_LIMIT_VERIFY_PER_EMAIL'],
      ['TRUST_PROXY=true', { TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
      ['OTP_CODE_MODE=random', { OTP_CODE_MODE: 'random' }, 'OTP_CODE_MODE'],
      ['webhook without OTP_WEBHOOK_URL', { OTP_DELIVERY: 'webhook', OTP_WEBHOOK_SECRET: 'shared' }, 'OTP_WEBHOOK_URL'],
      [
        'webhook with a non-http OTP_WEBHOOK_URL',
        { OTP_DELIVERY: 'webhook', OTP_WEBHOOK_URL: 'ftp://x', OTP_WEBHOOK_SECRET: 'shared' },
        'OTP_WEBHOOK_URL',
      ],
      [
        'webhook without OTP_WEBHOOK_SECRET',
        { OTP_DELIVERY: 'webhook', OTP_WEBHOOK_URL: 'https://hooks.example.com/otp' },
        'OTP_WEBHOOK_SECRET',
      ],
      ['REFRESH_TOKEN_DELIVERY=header', { REFRESH_TOKEN_DELIVERY: 'header' }, 'REFRESH_TOKEN_DELIVERY'],
      ['COOKIE_SECURE=maybe', { COOKIE_SECURE: 'maybe' }, 'COOKIE_SECURE'],
      ['COOKIE_SAME_SITE=sometimes', { COOKIE_SAME_SITE: 'sometimes' }, 'COOKIE_SAME_SITE'],
      [
        'COOKIE_SAME_SITE=none without Secure',
        { COOKIE_SAME_SITE: 'none', COOKIE_SECURE: 'false' },
        'COOKIE_SECURE=true',
      ],
      ['a CORS origin with a path', { CORS_ORIGINS: 'https://app.example.com/login' }, 'CORS_ORIGINS'],
      ['a CORS origin with a trailing slash', { CORS_ORIGINS: 'https://app.example.com/' }, 'CORS_ORIGINS'],
      ['a CORS origin without a scheme', { CORS_ORIGINS: 'app.example.com' }, 'CORS_ORIGINS'],
      ['a wildcard CORS origin', { CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
      ['ACCESS_TOKEN_TTL=-5', { ACCESS_TOKEN_TTL: '-5' }, 'ACCESS_TOKEN_TTL'],
      ['ACCESS_TOKEN_TTL=5 (below 10)', { ACCESS_TOKEN_TTL: '5' }, 'ACCESS_TOKEN_TTL'],
      ['REFRESH_TOKEN_TTL=1e3', { REFRESH_TOKEN_TTL: '1e3' }, 'REFRESH_TOKEN_TTL'],
      ['OTP_TTL=1.5', { OTP_TTL: '1.5' }, 'OTP_TTL'],
      ['OTP_RESEND_COOLDOWN=0x10', { OTP_RESEND_COOLDOWN: '0x10' }, 'OTP_RESEND_COOLDOWN'],
      ['OTP_MAX_ATTEMPTS=0', { OTP_MAX_ATTEMPTS: '0' }, 'OTP_MAX_ATTEMPTS'],
      ['OTP_MAX_ATTEMPTS=101', { OTP_MAX_ATTEMPTS: '101' }, 'OTP_MAX_ATTEMPTS'],
      ['a short introspection key', { OTP_INTROSPECTION_API_KEYS: 'short' }, 'OTP_INTROSPECTION_API_KEYS'],
      ['OTP_TOTP_WINDOW=11', { OTP_TOTP_WINDOW: '11' }, 'OTP_TOTP_WINDOW'],
      ['OTP_TOTP_ISSUER with a colon', { OTP_TOTP_ISSUER: 'Acme:Corp' }, 'OTP_TOTP_ISSUER'],
      ['a short previous secret', { OTP_AUTH_PREVIOUS_SECRETS: 'short-one' }, 'OTP_AUTH_PREVIOUS_SECRETS'],
      [
        'the current secret listed as previous',
        { OTP_AUTH_SECRET: SECRET, OTP_AUTH_PREVIOUS_SECRETS: SECRET },
        'OTP_AUTH_PREVIOUS_SECRETS',
      ],
      ['LOG_LEVEL=loud', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      ['HTTP_PLATFORM=koa', { HTTP_PLATFORM: 'koa' }, 'HTTP_PLATFORM'],
      ['OTP_DEVELOPER_MODE=yes', { OTP_DEVELOPER_MODE: 'yes' }, 'OTP_DEVELOPER_MODE'],
      ['a short OTP_AUTH_SECRET', { OTP_AUTH_SECRET: 'short' }, 'OTP_AUTH_SECRET'],
      ['OTP_AUTH_SECRET missing in production', { ...PRODUCTION, OTP_AUTH_SECRET: undefined }, 'OTP_AUTH_SECRET'],
      ['developer mode in production', { ...PRODUCTION, OTP_DEVELOPER_MODE: 'true' }, 'OTP_DEVELOPER_MODE'],
      [
        'developer mode with NODE_ENV=Production (any case)',
        { ...PRODUCTION, NODE_ENV: ' Production', OTP_DEVELOPER_MODE: 'true' },
        'OTP_DEVELOPER_MODE',
      ],
      [
        'a plain-HTTP webhook to another host in production',
        { ...PRODUCTION, OTP_WEBHOOK_URL: 'http://hooks.example.com/otp' },
        'OTP_WEBHOOK_URL must be https://',
      ],
      ['console delivery in production (explicit)', { ...PRODUCTION, OTP_DELIVERY: 'console' }, 'OTP_DELIVERY'],
      [
        'a short webhook secret in production',
        { ...PRODUCTION, OTP_WEBHOOK_SECRET: 'hook-secret' },
        'OTP_WEBHOOK_SECRET',
      ],
      [
        'a plain-HTTP SMS_BASE_URL in production',
        {
          ...PRODUCTION,
          OTP_DELIVERY: 'sms',
          SMS_ACCOUNT_SID: 'AC1',
          SMS_AUTH_TOKEN: 'sms-auth-token',
          SMS_FROM: '+15550100',
          SMS_BASE_URL: 'http://sms.example.com',
        },
        'SMS_BASE_URL must be https://',
      ],
      [
        'an ftp SMS_BASE_URL',
        { OTP_DELIVERY: 'sms', SMS_ACCOUNT_SID: 'AC1', SMS_AUTH_TOKEN: 't', SMS_FROM: '+1', SMS_BASE_URL: 'ftp://x' },
        'SMS_BASE_URL',
      ],
      ['DATABASE_SYNCHRONIZE=maybe', { DATABASE_SYNCHRONIZE: 'maybe' }, 'DATABASE_SYNCHRONIZE'],
      [
        'SMTP_REQUIRE_TLS=maybe',
        { OTP_DELIVERY: 'smtp', SMTP_URL: 'smtp://mail:25', SMTP_FROM: 'a@b.test', SMTP_REQUIRE_TLS: 'maybe' },
        'SMTP_REQUIRE_TLS',
      ],
      [
        'console delivery in production (the default)',
        { NODE_ENV: 'production', OTP_AUTH_SECRET: SECRET },
        'OTP_DELIVERY',
      ],
    ])('%s', (_label, env, name) => {
      expect(errorOf(env).message).toContain(name);
    });

    it.each([
      'postgres://admin:hunter2-pw@db:99999/app',
      'postgresql://admin:hunter2-pw@[not-a-host/app',
      'mysql://admin:hunter2-pw@db:port/app',
      'mariadb://admin:hunter2-pw@db:99999/app',
      'mongodb://admin:hunter2-pw@[not-a-host/app',
      'mongodb://admin:hunter2-pw@h1:27017,,h2:27017/app',
      'mongodb://admin:hunter2-pw@h1:27017,h2:port/app',
      'mongodb+srv://admin:hunter2-pw@a.example.net,b.example.net/app',
      'mongodb:///app',
      'redis://admin:hunter2-pw@db:6379',
      'admin:hunter2-pw@db/app',
    ])('never puts the password of DATABASE_URL=%s in the error', (url) => {
      const { message } = errorOf({ DATABASE_URL: url });
      expect(message).toContain('DATABASE_URL');
      expect(message).not.toContain('hunter2');
    });

    it('lists every malformed variable at once, one per line', () => {
      expect(errorOf({ PORT: 'abc', LOG_LEVEL: 'loud', OTP_WEB_UI: 'off' }).message.split('\n')).toEqual([
        'PORT: must be an integer from 1 to 65535 (got "abc").',
        'LOG_LEVEL: must be one of error, warn, log, debug, verbose (got "loud").',
        'OTP_WEB_UI: must be true, false, 1 or 0 (got "off").',
      ]);
    });
  });

  describe("the library's bounds, reported by variable name", () => {
    it('OTP_TTL=0', () => {
      expect(errorOf({ OTP_TTL: '0' }).message).toBe('OTP_TTL: must be an integer from 1 to 86400 (got 0).');
    });

    it('OTP_RESEND_COOLDOWN=0 is accepted, as the library allows (no cooldown)', () => {
      const config = loadConfig({ OTP_RESEND_COOLDOWN: '0' });
      expect(config.resendCooldown).toBe(0);
      expect(otpAuthModuleOptions(config).resendCooldown).toBe(0);
    });

    it('a rule of a <limit>/<window> variable', () => {
      expect(errorOf({ RATE_LIMIT_SEND_PER_EMAIL: '5/0' }).message).toMatch(
        /^RATE_LIMIT_SEND_PER_EMAIL: the window must be an integer from 1 to \d+ \(got 0\)\.$/,
      );
      expect(errorOf({ OTP_RECIPIENT_LIMIT: '5/600, 0/86400' }).message).toMatch(
        /^OTP_RECIPIENT_LIMIT: rule 2: the limit must be an integer from 1 to \d+ \(got 0\)\.$/,
      );
    });

    it('other options named in the message are named by their variables too', () => {
      expect(errorOf({ SESSION_MAX_AGE: '600', REFRESH_TOKEN_TTL: '900' }).message).toMatch(
        /^SESSION_MAX_AGE: .*\b600\b.*REFRESH_TOKEN_TTL \(900\)/,
      );
    });

    // Every variable the library bounds, just outside its range: the message starts with the variable.
    it.each<[string, string]>([
      ['ACCESS_TOKEN_TTL', '5'],
      ['REFRESH_TOKEN_TTL', '30'],
      ['SESSION_MAX_AGE', '30'],
      ['SESSION_IDLE_TIMEOUT', '30'],
      ['OTP_TTL', '86401'],
      ['OTP_RESEND_COOLDOWN', '86401'],
      ['OTP_MAX_ATTEMPTS', '0'],
      ['OTP_TOTP_WINDOW', '11'],
      ['OTP_TOTP_ENROLLMENT_MAX_AUTH_AGE', '99999999'],
      ['OTP_TOTP_MANAGEMENT_MAX_AUTH_AGE', '99999999'],
      ['OTP_STATELESS_WINDOW', '10'],
      ['OTP_STATELESS_DRIFT', '6'],
      ['OTP_DELIVERY_DEADLINE_MS', '60001'],
      ['OTP_RECIPIENT_LIMIT', '0/600'],
      ['RATE_LIMIT_SEND_PER_EMAIL', '0/600'],
      ['RATE_LIMIT_SEND_PER_EMAIL_DAILY', '0/600'],
      ['RATE_LIMIT_SEND_PER_EMAIL_TOTAL', '0/600'],
      ['RATE_LIMIT_SEND_PER_EMAIL_DAILY_TOTAL', '0/600'],
      ['RATE_LIMIT_SEND_PER_IP', '0/600'],
      ['RATE_LIMIT_SEND_GLOBAL', '0/600'],
      ['RATE_LIMIT_VERIFY_PER_EMAIL', '0/600'],
      ['RATE_LIMIT_VERIFY_PER_EMAIL_TOTAL', '0/600'],
      ['RATE_LIMIT_VERIFY_PER_IP', '0/600'],
      ['RATE_LIMIT_VERIFY_GLOBAL', '99999999/600'],
      ['TRUST_PROXY', '10.0.0.0/99'],
      ['OTP_AUTH_SECRET', 'a-secret-that-is-too-short'],
    ])('%s=%s', (name, value) => {
      const { message } = errorOf({ [name]: value });
      expect(message.startsWith(`${name}: `)).toBe(true);
      expect(message).not.toContain('OtpAuthModule');
    });

    it('what loadConfig accepts, the library resolves as the module options', () => {
      // The resolver only checks that the store has these methods; it never calls them.
      const store = { findCode: () => undefined, insertSuccessor: () => undefined } as unknown as OtpAuthStore;
      const config = loadConfig({ ...PRODUCTION, OTP_TTL: '1', OTP_TOTP_WINDOW: '0', SESSION_IDLE_TIMEOUT: '0' });
      const options = { ...otpAuthModuleOptions(config), store };
      expect(resolveOtpAuthOptions(options, undefined, { NODE_ENV: 'production' }, 'factory')).toMatchObject({
        otpTtl: 1,
        totp: { window: 0 },
        sessionIdleTimeout: null,
      });
    });
  });
});

describe('describeConfigurationError', () => {
  it('names the variable behind an option of a library error', () => {
    expect(
      describeConfigurationError(
        new OtpAuthConfigurationError('`maxAttempts` must be an integer from 1 to 100 (got 0).'),
      ),
    ).toBe('OTP_MAX_ATTEMPTS: must be an integer from 1 to 100 (got 0).');
    expect(
      describeConfigurationError(
        new OtpAuthConfigurationError('`rateLimits.send.perEmailDaily.limit` must be an integer from 1 to 9 (got 0).'),
      ),
    ).toBe('RATE_LIMIT_SEND_PER_EMAIL_DAILY: the limit must be an integer from 1 to 9 (got 0).');
  });

  it('keeps messages about options no variable sets, and other errors, as they are', () => {
    const unknown = new OtpAuthConfigurationError('unknown option `otpTTL`; did you mean `otpTtl`?');
    expect(describeConfigurationError(unknown)).toBe(unknown.message);
    const runtime = new OtpAuthConfigurationError('`store` is required.');
    expect(describeConfigurationError(runtime)).toBe(runtime.message);
    expect(describeConfigurationError(new Error('`otpTtl` is not a library error here'))).toBe(
      '`otpTtl` is not a library error here',
    );
    expect(describeConfigurationError('plain')).toBe('plain');
  });
});

describe('loadConfigFromEnvironment (@nestjs/config, as main.ts reads the configuration)', () => {
  let savedEnv: NodeJS.ProcessEnv;
  let dir: string;
  beforeEach(() => {
    // ConfigModule reads the real process.env: give it one that holds only what each test sets.
    savedEnv = process.env;
    process.env = {};
    dir = mkdtempSync(join(tmpdir(), 'sample-config-'));
  });
  afterEach(() => {
    process.env = savedEnv;
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads .env, and a variable set in the real environment wins over the file', async () => {
    const envFile = join(dir, '.env');
    writeFileSync(envFile, ['PORT=4100', 'OTP_APP_NAME="Acme sign-in"', 'HTTP_PLATFORM=fastify', ''].join('\n'));
    process.env['PORT'] = '4200';
    const config = await loadConfigFromEnvironment({ envFilePath: envFile });
    expect(config.port).toBe(4200);
    expect(config.appName).toBe('Acme sign-in');
    expect(config.platform).toBe('fastify');
    // The file's variables reach process.env (the library reads NODE_ENV there); the real one stays.
    expect(process.env['HTTP_PLATFORM']).toBe('fastify');
    expect(process.env['PORT']).toBe('4200');
  });

  it('reads .env from the working directory by default', async () => {
    writeFileSync(join(dir, '.env'), 'OTP_APP_NAME=From the working directory\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect((await loadConfigFromEnvironment()).appName).toBe('From the working directory');
    } finally {
      process.chdir(cwd);
    }
  });

  it('runs on the real environment alone when there is no .env', async () => {
    process.env['OTP_APP_NAME'] = 'Environment only';
    const config = await loadConfigFromEnvironment({ envFilePath: join(dir, 'missing.env') });
    expect(config.appName).toBe('Environment only');
    expect(config.port).toBe(3000);
  });

  it('refuses a bad value from .env with a message naming the variable', async () => {
    const envFile = join(dir, '.env');
    writeFileSync(envFile, 'OTP_TTL=0\nCOOKIE_SECURE=maybe\n');
    await expect(loadConfigFromEnvironment({ envFilePath: envFile })).rejects.toThrow(
      'COOKIE_SECURE: must be true, false, 1 or 0 (got "maybe").',
    );
    writeFileSync(envFile, 'OTP_TTL=0\n');
    await expect(loadConfigFromEnvironment({ envFilePath: envFile })).rejects.toThrow(
      'OTP_TTL: must be an integer from 1 to 86400 (got 0).',
    );
  });

  it('lets the real environment fix a bad value in .env', async () => {
    const envFile = join(dir, '.env');
    writeFileSync(envFile, 'OTP_TTL=0\n');
    process.env['OTP_TTL'] = '120';
    expect((await loadConfigFromEnvironment({ envFilePath: envFile })).otpTtl).toBe(120);
  });
});
