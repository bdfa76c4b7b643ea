import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { OtpAuthModuleOptions } from './otp-auth-options.interface.js';
import { OTP_AUTH_DEFAULTS, resolveOtpAuthOptions } from './resolve-options.js';
import { OtpAuthConfigurationError } from '../errors.js';

const SECRET = 'resolve-options-secret-0123456789abcdef';
const store = {
  findCode: () => Promise.resolve(null),
  insertSuccessor: () => Promise.resolve(false),
} as unknown as OtpAuthStore;
const DEV_ENV: NodeJS.ProcessEnv = { NODE_ENV: 'test' };

function resolve(extra: Partial<OtpAuthModuleOptions> = {}, routePrefix?: string, env: NodeJS.ProcessEnv = DEV_ENV) {
  return resolveOtpAuthOptions({ secret: SECRET, store, ...extra }, routePrefix, env);
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to throw');
}

describe('resolveOtpAuthOptions', () => {
  describe('secret', () => {
    it('accepts a secret of 32 characters or more', () => {
      expect(resolve().secret).toBe(SECRET);
      const long = '0123456789abcdef'.repeat(4);
      expect(resolve({ secret: long }).secret).toBe(long);
    });

    it('rejects a placeholder secret with few distinct characters, however long', () => {
      expect(() => resolve({ secret: 'x'.repeat(64) })).toThrow(
        '`secret` looks like a placeholder: it has only 1 distinct character. Generate one with `openssl rand -hex 32`.',
      );
      expect(() => resolve({ secret: 'abcabcabcabcabcabcabcabcabcabcabcabc' })).toThrow('only 3 distinct characters');
      // Developer mode accepts anything, as for short secrets.
      expect(resolve({ secret: 'x', developerMode: true }).developerMode).toBe(true);
    });

    it('rejects a 31-character secret, mentioning 32 and how to generate one', () => {
      const error = errorOf(() => resolve({ secret: 'a'.repeat(31) }));
      expect(error).toBeInstanceOf(OtpAuthConfigurationError);
      expect(error.message).toContain('32');
      expect(error.message).toContain('openssl rand -hex 32');
    });

    it('rejects a missing secret, mentioning how to generate one', () => {
      const error = errorOf(() =>
        resolveOtpAuthOptions({ store } as unknown as OtpAuthModuleOptions, undefined, DEV_ENV),
      );
      expect(error).toBeInstanceOf(OtpAuthConfigurationError);
      expect(error.message).toContain('openssl rand -hex 32');
      expect(() => resolve({ secret: '' })).toThrow('openssl rand -hex 32');
    });

    it('accepts a short secret in developer mode', () => {
      const resolved = resolve({ secret: 'dev', developerMode: true });
      expect(resolved.secret).toBe('dev');
      expect(resolved.developerMode).toBe(true);
    });
  });

  it('rejects developer mode when NODE_ENV=production', () => {
    expect(() => resolve({ developerMode: true }, undefined, { NODE_ENV: 'production' })).toThrow(
      OtpAuthConfigurationError,
    );
    expect(() => resolve({ developerMode: true }, undefined, { NODE_ENV: 'production' })).toThrow(/developerMode/);
    // Production without developer mode is fine.
    expect(resolve({}, undefined, { NODE_ENV: 'production' }).developerMode).toBe(false);
    // Any case and surrounding blanks: a capital letter must not switch the guard off.
    expect(() => resolve({ developerMode: true }, undefined, { NODE_ENV: 'Production' })).toThrow(/developerMode/);
    expect(() => resolve({ developerMode: true }, undefined, { NODE_ENV: ' PRODUCTION ' })).toThrow(/developerMode/);
  });

  it('fills in the documented defaults', () => {
    const resolved = resolve();
    expect(resolved).toMatchObject({
      accessTokenTtl: 3600,
      refreshTokenTtl: 604800,
      otpLength: 6,
      otpTtl: 600,
      maxAttempts: 5,
      resendCooldown: 60,
      autoCreateUser: true,
      developerMode: false,
      refreshTokenDelivery: 'cookie',
      refreshReuseGracePeriod: 5,
      issuer: 'nestjs-otp-auth',
      audience: 'nestjs-otp-auth',
      revocationSyncInterval: 1,
      routePrefix: 'auth',
    });
    expect(resolved.cookie).toEqual({
      name: '__Secure-otp_refresh',
      secure: true,
      sameSite: 'strict',
      path: '/auth',
      domain: undefined,
      allowedOrigins: [],
    });
    expect(resolve({ cookie: { secure: false } }).cookie.name).toBe('otp_refresh');
    expect(resolved.addressFailureLimit).toEqual({ max: 10, window: 3600 });
    expect(resolved.store).toBe(store);
    expect(resolved.clock).toBe(Date.now);
  });

  it('honours custom values', () => {
    const clock = () => 42;
    const resolved = resolve({
      accessTokenTtl: 900,
      refreshTokenTtl: 86400,
      otpLength: 8,
      otpTtl: 300,
      maxAttempts: 3,
      resendCooldown: 0,
      addressFailureLimit: { max: 20, window: 600 },
      autoCreateUser: false,
      refreshTokenDelivery: 'both',
      cookie: { name: 'rt', secure: false, sameSite: 'lax', path: '/api/auth', domain: 'example.com' },
      refreshReuseGracePeriod: 0,
      issuer: 'my-issuer',
      audience: 'my-audience',
      revocationSyncInterval: 30,
      clock,
    });
    expect(resolved).toMatchObject({
      accessTokenTtl: 900,
      refreshTokenTtl: 86400,
      otpLength: 8,
      otpTtl: 300,
      maxAttempts: 3,
      resendCooldown: 0,
      autoCreateUser: false,
      refreshTokenDelivery: 'both',
      refreshReuseGracePeriod: 0,
      issuer: 'my-issuer',
      audience: 'my-audience',
      revocationSyncInterval: 30,
    });
    expect(resolved.addressFailureLimit).toEqual({ max: 20, window: 600 });
    expect(resolved.cookie).toEqual({
      name: 'rt',
      secure: false,
      sameSite: 'lax',
      path: '/api/auth',
      domain: 'example.com',
      allowedOrigins: [],
    });
    expect(resolved.clock()).toBe(42);
  });

  it('accepts otpLength 4 to 10 and rejects 3 and 11', () => {
    expect(resolve({ otpLength: 4 }).otpLength).toBe(4);
    expect(resolve({ otpLength: 10 }).otpLength).toBe(10);
    expect(() => resolve({ otpLength: 3 })).toThrow(OtpAuthConfigurationError);
    expect(() => resolve({ otpLength: 11 })).toThrow(OtpAuthConfigurationError);
    expect(() => resolve({ otpLength: 11 })).toThrow(/otpLength/);
    expect(() => resolve({ otpLength: 6.5 })).toThrow(/otpLength/);
  });

  it('totp.enrollmentMaxAuthAge: 900 s by default, false turns it off, 0 or a fraction is refused', () => {
    expect(resolve().totp.enrollmentMaxAuthAge).toBe(900);
    expect(resolve({ totp: { enrollmentMaxAuthAge: 300 } }).totp.enrollmentMaxAuthAge).toBe(300);
    expect(resolve({ totp: { enrollmentMaxAuthAge: false } }).totp.enrollmentMaxAuthAge).toBeNull();
    for (const bad of [0, 1.5, -1]) {
      expect(errorOf(() => resolve({ totp: { enrollmentMaxAuthAge: bad } })).message).toBe(
        `OtpAuthModule: \`totp.enrollmentMaxAuthAge\` must be an integer from 1 to 31622400 (got ${bad}).`,
      );
    }
  });

  it('totp.managementMaxAuthAge: follows enrollmentMaxAuthAge unless set, false turns it off, 0 or a fraction is refused', () => {
    expect(resolve().totp.managementMaxAuthAge).toBe(900);
    expect(resolve({ totp: { enrollmentMaxAuthAge: 300 } }).totp.managementMaxAuthAge).toBe(300);
    expect(resolve({ totp: { enrollmentMaxAuthAge: false } }).totp.managementMaxAuthAge).toBeNull();
    expect(resolve({ totp: { managementMaxAuthAge: 60 } }).totp).toMatchObject({
      enrollmentMaxAuthAge: 900,
      managementMaxAuthAge: 60,
    });
    expect(resolve({ totp: { enrollmentMaxAuthAge: false, managementMaxAuthAge: 120 } }).totp).toMatchObject({
      enrollmentMaxAuthAge: null,
      managementMaxAuthAge: 120,
    });
    expect(resolve({ totp: { managementMaxAuthAge: false } }).totp).toMatchObject({
      enrollmentMaxAuthAge: 900,
      managementMaxAuthAge: null,
    });
    for (const bad of [0, 1.5, -1]) {
      expect(errorOf(() => resolve({ totp: { managementMaxAuthAge: bad } })).message).toBe(
        `OtpAuthModule: \`totp.managementMaxAuthAge\` must be an integer from 1 to 31622400 (got ${bad}).`,
      );
    }
  });

  it('sessionMaxAge: 30 days by default (capping a longer refreshTokenTtl); an explicit one is at least refreshTokenTtl', () => {
    expect(resolve().sessionMaxAge).toBe(2_592_000);
    expect(resolve({ sessionMaxAge: 300, refreshTokenTtl: 60 }).sessionMaxAge).toBe(300);
    // The default does not reject an existing longer refreshTokenTtl: tokens are capped at 30 days.
    expect(resolve({ refreshTokenTtl: 90 * 24 * 3600 }).sessionMaxAge).toBe(2_592_000);
    expect(errorOf(() => resolve({ sessionMaxAge: 3600 })).message).toBe(
      'OtpAuthModule: `sessionMaxAge` (3600) is shorter than `refreshTokenTtl` (604800); raise it or lower `refreshTokenTtl`.',
    );
    for (const bad of [59, 1.5, 366 * 24 * 3600 + 1]) {
      expect(errorOf(() => resolve({ sessionMaxAge: bad, refreshTokenTtl: 60 })).message).toBe(
        `OtpAuthModule: \`sessionMaxAge\` must be an integer from 60 to 31622400 (got ${bad}).`,
      );
    }
  });

  it('sessionIdleTimeout: off by default and with false, else 60 s to a year', () => {
    expect(resolve().sessionIdleTimeout).toBeNull();
    expect(resolve({ sessionIdleTimeout: false }).sessionIdleTimeout).toBeNull();
    expect(resolve({ sessionIdleTimeout: 900 }).sessionIdleTimeout).toBe(900);
    for (const bad of [0, 59, 1.5]) {
      expect(errorOf(() => resolve({ sessionIdleTimeout: bad })).message).toBe(
        `OtpAuthModule: \`sessionIdleTimeout\` must be an integer from 60 to 31622400 (got ${bad}).`,
      );
    }
    expect(
      errorOf(() => resolve({ sessionIdelTimeout: 60 } as unknown as Partial<OtpAuthModuleOptions>)).message,
    ).toContain('did you mean `sessionIdleTimeout`?');
  });

  it('cookie.allowedOrigins: kept as browsers send Origin (lower-case host, no default port), paths refused', () => {
    expect(
      resolve({ cookie: { allowedOrigins: ['https://App.Example.com:443', 'http://localhost:5173'] } }).cookie
        .allowedOrigins,
    ).toEqual(['https://app.example.com', 'http://localhost:5173']);
    expect(errorOf(() => resolve({ cookie: { allowedOrigins: ['https://app.example.com/login'] } })).message).toContain(
      'allowedOrigins',
    );
  });

  it('rejects an unknown refreshTokenDelivery', () => {
    expect(resolve({ refreshTokenDelivery: 'body' }).refreshTokenDelivery).toBe('body');
    expect(() => resolve({ refreshTokenDelivery: 'header' as unknown as 'body' })).toThrow(/refreshTokenDelivery/);
  });

  it('rejects sameSite none without secure, accepts it with secure', () => {
    expect(() => resolve({ cookie: { sameSite: 'none', secure: false } })).toThrow(OtpAuthConfigurationError);
    expect(() => resolve({ cookie: { sameSite: 'none', secure: false } })).toThrow(/secure/);
    expect(resolve({ cookie: { sameSite: 'none' } }).cookie).toMatchObject({ sameSite: 'none', secure: true });
  });

  it('rejects a missing or incomplete store, naming TypeOrmOtpAuthStore', () => {
    const missing = errorOf(() =>
      resolveOtpAuthOptions({ secret: SECRET } as unknown as OtpAuthModuleOptions, undefined, DEV_ENV),
    );
    expect(missing).toBeInstanceOf(OtpAuthConfigurationError);
    expect(missing.message).toContain('TypeOrmOtpAuthStore');
    expect(() => resolve({ store: { findCode: () => null } as unknown as OtpAuthStore })).toThrow(
      'TypeOrmOtpAuthStore',
    );
  });

  it('derives the cookie path from a custom route prefix', () => {
    expect(resolve({}, 'v1/login').cookie.path).toBe('/v1/login');
    expect(resolve({}, '/v1/login/').cookie.path).toBe('/v1/login');
    expect(resolve({}, '/v1/login/').routePrefix).toBe('v1/login');
    // An explicit path wins over the prefix.
    expect(resolve({ cookie: { path: '/custom' } }, 'v1/login').cookie.path).toBe('/custom');
  });

  it('gives each resolution its own state', () => {
    const options: OtpAuthModuleOptions = { secret: SECRET, store, addressFailureLimit: { max: 7, window: 70 } };
    const first = resolveOtpAuthOptions(options, undefined, DEV_ENV);
    const second = resolveOtpAuthOptions(options, undefined, DEV_ENV);
    expect(first.cookie).not.toBe(second.cookie);
    expect(first.addressFailureLimit).not.toBe(second.addressFailureLimit);

    const tryMutate = (mutate: () => void) => {
      try {
        mutate();
      } catch {
        // A frozen result is fine too.
      }
    };
    tryMutate(() => {
      (first.cookie as { name: string }).name = 'mutated';
    });
    tryMutate(() => {
      (first.addressFailureLimit as { max: number }).max = 9999;
    });
    expect(second.cookie.name).toBe('__Secure-otp_refresh');
    expect(second.addressFailureLimit.max).toBe(7);
    expect(options.addressFailureLimit).toEqual({ max: 7, window: 70 });

    // Defaults are not shared either.
    const third = resolve();
    tryMutate(() => {
      (third.addressFailureLimit as { max: number }).max = 9999;
    });
    expect(resolve().addressFailureLimit).toEqual({ max: 10, window: 3600 });
    expect(OTP_AUTH_DEFAULTS.addressFailureLimit).toEqual({ max: 10, window: 3600 });
  });

  it('defaults getAdditionalClaims to returning {}', async () => {
    const resolved = resolve();
    expect(await resolved.getAdditionalClaims({ id: 1 })).toEqual({});
  });

  it('uses a given getAdditionalClaims', async () => {
    const resolved = resolve({ getAdditionalClaims: (user) => ({ role: (user as { role: string }).role }) });
    expect(await resolved.getAdditionalClaims({ role: 'admin' })).toEqual({ role: 'admin' });
  });

  describe('stateless.multiInstance', () => {
    const broadcaster = { publish: async () => undefined, subscribe: async () => undefined };
    it('is implied by a revocation broadcaster, an explicit value wins, and it must be a boolean', () => {
      expect(resolve().stateless.multiInstance).toBe(false);
      expect(resolve({ revocationBroadcaster: broadcaster }).stateless.multiInstance).toBe(true);
      expect(resolve({ stateless: { multiInstance: true } }).stateless.multiInstance).toBe(true);
      expect(
        resolve({ revocationBroadcaster: broadcaster, stateless: { multiInstance: false } }).stateless.multiInstance,
      ).toBe(false);
      expect(() => resolve({ stateless: { multiInstance: 'yes' as unknown as boolean } })).toThrow(
        '`stateless.multiInstance` must be true or false',
      );
    });
  });

  describe('delivery: uniform timing and the per-recipient cap', () => {
    it('defaults: a 1 s deadline, automatic uniform timing, what one address may get per recipient', () => {
      const { delivery } = resolve();
      expect(delivery.responseDeadline).toBe(1000);
      expect(delivery.uniformTiming).toBe('auto');
      expect(delivery.recipientLimit).toEqual([
        { limit: 5, window: 600 },
        { limit: 20, window: 86_400 },
      ]);
    });

    it('takes a deadline, a forced setting, one rule, several or none', () => {
      const delivery = resolve({ delivery: { responseDeadline: 250, uniformTiming: true } }).delivery;
      expect(delivery).toMatchObject({ responseDeadline: 250, uniformTiming: true });
      expect(resolve({ delivery: { recipientLimit: { limit: 3, window: 3600 } } }).delivery.recipientLimit).toEqual([
        { limit: 3, window: 3600 },
      ]);
      expect(resolve({ delivery: { recipientLimit: [{ limit: 1, window: 60 }] } }).delivery.recipientLimit).toEqual([
        { limit: 1, window: 60 },
      ]);
      expect(resolve({ delivery: { recipientLimit: false } }).delivery.recipientLimit).toEqual([]);
    });

    it('refuses a deadline that is not whole milliseconds from 1 to 60000, saying what it is for', () => {
      for (const bad of [0, 1.5, 60_001, '500' as unknown as number]) {
        expect(() => resolve({ delivery: { responseDeadline: bad } })).toThrow(
          /^OtpAuthModule: `delivery.responseDeadline` must be a whole number of milliseconds from 1 to 60000 \(got .+\): the time at which request-otp answers/,
        );
      }
      expect(() => resolve({ delivery: { uniformTiming: 'yes' as unknown as boolean } })).toThrow(
        '`delivery.uniformTiming` must be true, false or left out',
      );
    });

    it('refuses malformed recipient limits with the path of the bad rule', () => {
      expect(() => resolve({ delivery: { recipientLimit: [] } })).toThrow(
        '`delivery.recipientLimit` must be { limit, window } (window in seconds), a non-empty list of them, or false (got []).',
      );
      expect(() =>
        resolve({
          delivery: {
            recipientLimit: [
              { limit: 5, window: 600 },
              { limit: 0, window: 60 },
            ],
          },
        }),
      ).toThrow('`delivery.recipientLimit[1].limit` must be an integer from 1 to 10000000 (got 0).');
      expect(() =>
        resolve({
          delivery: { recipientLimit: { limit: 5, windw: 60 } as unknown as { limit: number; window: number } },
        }),
      ).toThrow('unknown option `delivery.recipientLimit.windw`; did you mean `delivery.recipientLimit.window`?');
    });
  });

  describe('unknown keys', () => {
    /** Options with keys the types do not have, as a JavaScript caller or a loose factory gives them. */
    const loose = (extra: Record<string, unknown>) => extra as Partial<OtpAuthModuleOptions>;
    const factory = (extra: Record<string, unknown>) =>
      resolveOtpAuthOptions({ secret: SECRET, store, ...extra }, undefined, DEV_ENV, 'factory');

    it('refuses a top-level typo, naming the option it probably meant', () => {
      expect(errorOf(() => resolve(loose({ accessTokenTTL: 60 })))).toBeInstanceOf(OtpAuthConfigurationError);
      expect(errorOf(() => resolve(loose({ accessTokenTTL: 60 }))).message).toBe(
        'OtpAuthModule: unknown option `accessTokenTTL`; did you mean `accessTokenTtl`?',
      );
      // Misspellings (a missing letter, swapped letters) as well as other cases.
      expect(() => resolve(loose({ accesTokenTtl: 60 }))).toThrow('did you mean `accessTokenTtl`?');
      expect(() => resolve(loose({ refershTokenTtl: 60 }))).toThrow('did you mean `refreshTokenTtl`?');
      expect(() => resolve(loose({ OTPLength: 8 }))).toThrow('unknown option `OTPLength`; did you mean `otpLength`?');
      expect(() => resolve(loose({ revocationsyncinterval: 5 }))).toThrow('did you mean `revocationSyncInterval`?');
    });

    it('prefers the same letters in another case over a closer spelling', () => {
      // `Issuer` is one edit from `issuer` either way; the case-insensitive match decides.
      expect(() => resolve(loose({ Issuer: 'x' }))).toThrow('unknown option `Issuer`; did you mean `issuer`?');
      expect(() => resolve(loose({ TOTP: {} }))).toThrow('did you mean `totp`?');
    });

    it('refuses a key that resembles nothing, pointing to the reference', () => {
      const message = errorOf(() => resolve(loose({ frobnicate: true }))).message;
      expect(message).toBe(
        'OtpAuthModule: unknown option `frobnicate` (the options are listed under "Configuration reference" in the README).',
      );
    });

    it('checks the keys before the values, so a misspelt required option is named as a typo', () => {
      const error = errorOf(() =>
        resolveOtpAuthOptions({ secrt: SECRET, store } as unknown as OtpAuthModuleOptions, undefined, DEV_ENV),
      );
      expect(error.message).toBe('OtpAuthModule: unknown option `secrt`; did you mean `secret`?');
    });

    it.each([
      [{ totp: { windw: 2 } }, 'unknown option `totp.windw`; did you mean `totp.window`?'],
      [{ totp: { Digits: 8 } }, 'unknown option `totp.Digits`; did you mean `totp.digits`?'],
      [{ cookie: { Path: '/api/auth' } }, 'unknown option `cookie.Path`; did you mean `cookie.path`?'],
      [{ cookie: { samesite: 'lax' } }, 'unknown option `cookie.samesite`; did you mean `cookie.sameSite`?'],
      [{ delivery: { retrys: 2 } }, 'unknown option `delivery.retrys`; did you mean `delivery.retries`?'],
      [{ rateLimits: { enable: false } }, 'unknown option `rateLimits.enable`; did you mean `rateLimits.enabled`?'],
      [
        { rateLimits: { send: { perEmial: false } } },
        'unknown option `rateLimits.send.perEmial`; did you mean `rateLimits.send.perEmail`?',
      ],
      [
        { rateLimits: { verify: { perEmailDaily: false } } },
        // A send-only scope in the verify scopes: nothing there is close, so the message lists them.
        'unknown option `rateLimits.verify.perEmailDaily`; `rateLimits.verify` takes `perEmail`, `perEmailTotal`, `perIp`, `perIpv6Prefix56`, `perIpv6Prefix48`, `global`.',
      ],
      [
        { rateLimits: { verify: { perIp: { limt: 5, window: 60 } } } },
        'unknown option `rateLimits.verify.perIp.limt`; did you mean `rateLimits.verify.perIp.limit`?',
      ],
      [
        { tokenEndpoints: { introspectionApiKey: [] } },
        'unknown option `tokenEndpoints.introspectionApiKey`; did you mean `tokenEndpoints.introspectionApiKeys`?',
      ],
      [{ stateless: { drfit: 1 } }, 'unknown option `stateless.drfit`; did you mean `stateless.drift`?'],
      [
        { addressFailureLimit: { max: 5, windw: 60 } },
        'unknown option `addressFailureLimit.windw`; did you mean `addressFailureLimit.window`?',
      ],
    ])('refuses a nested typo in %j, with its path', (options, message) => {
      const error = errorOf(() => resolve(loose(options)));
      expect(error).toBeInstanceOf(OtpAuthConfigurationError);
      expect(error.message).toBe(`OtpAuthModule: ${message}`);
    });

    it('lists what a nested object takes when nothing is close', () => {
      expect(errorOf(() => resolve(loose({ addressFailureLimit: { maximum: 5, window: 60 } }))).message).toBe(
        'OtpAuthModule: unknown option `addressFailureLimit.maximum`; `addressFailureLimit` takes `max`, `window`.',
      );
    });

    it('accepts every documented key, undefined values, disabled rules and cleanupInterval', () => {
      expect(() =>
        resolve({
          accessTokenTtl: undefined,
          cookie: { name: undefined, path: undefined, allowedOrigins: [] },
          totp: { window: 1, required: () => false },
          delivery: { mode: 'inline' },
          rateLimits: { enabled: true, send: { perIp: false, perEmail: { limit: 3, window: 60 } }, verify: {} },
          tokenEndpoints: { verify: false },
          stateless: { window: 300, drift: 1 },
          addressFailureLimit: { max: 5, window: 60 },
          cleanupInterval: 300,
        }),
      ).not.toThrow();
      expect(() => resolve({ cleanupInterval: false })).not.toThrow();
    });

    it('looks only at own enumerable keys, so options may be class instances with methods', async () => {
      class AppOptions {
        readonly secret = SECRET;
        readonly store = store;
        getAdditionalClaims(user: object): Record<string, unknown> {
          return { role: (user as { role: string }).role };
        }
      }
      const resolved = resolveOtpAuthOptions(new AppOptions(), undefined, DEV_ENV, 'factory');
      expect(await resolved.getAdditionalClaims({ role: 'admin' })).toEqual({ role: 'admin' });
      // Hidden bookkeeping is not an option either.
      const options = { secret: SECRET, store };
      Object.defineProperty(options, 'internalState', { value: 1, enumerable: false });
      expect(() => resolveOtpAuthOptions(options, undefined, DEV_ENV)).not.toThrow();
      // An own field is a key like any other.
      class WithField extends AppOptions {
        readonly config = {};
      }
      expect(() => resolveOtpAuthOptions(new WithField(), undefined, DEV_ENV)).toThrow('unknown option `config`');
    });

    it('refuses typos among the members of an options class, and leaves its other helpers alone', () => {
      class Typo {
        readonly secret = SECRET;
        readonly store = store;
        get accesTokenTtl(): number {
          return 60;
        }
        onEvnt(): void {}
        buildStoreLater(): void {}
      }
      expect(() => resolveOtpAuthOptions(new Typo(), undefined, DEV_ENV, 'factory')).toThrow(
        'unknown option `accesTokenTtl`; did you mean `accessTokenTtl`?',
      );
      class Helpers {
        readonly secret = SECRET;
        readonly store = store;
        buildStoreLater(): void {}
      }
      expect(() => resolveOtpAuthOptions(new Helpers(), undefined, DEV_ENV, 'factory')).not.toThrow();
      // An object literal's __proto__ is a prototype too.
      const inherited = Object.assign(Object.create({ accessTokenTTL: 60 }) as object, { secret: SECRET, store });
      expect(() => resolveOtpAuthOptions(inherited as OtpAuthModuleOptions, undefined, DEV_ENV)).toThrow(
        'did you mean `accessTokenTtl`?',
      );
    });

    it('refuses a nested option that is not an object (an array, a string), naming what it takes', () => {
      expect(() => resolve(loose({ rateLimits: [] }))).toThrow('`rateLimits` must be an object with `enabled`');
      expect(() => resolve(loose({ cookie: ['x'] }))).toThrow('`cookie` must be an object with `name`');
      expect(() => resolve(loose({ totp: 'abc' }))).toThrow('`totp` must be an object');
      expect(() => resolveOtpAuthOptions([] as unknown as OtpAuthModuleOptions, undefined, DEV_ENV)).toThrow(
        'options must be an object',
      );
    });

    it.each([
      'routePrefix',
      'mountRoutes',
      'isGlobal',
      'sender',
      'extraProviders',
      'storeUnavailableFilter',
      'globalGuard',
    ])('refuses the definition-time option %s in what a factory returns', (key) => {
      const error = errorOf(() => factory({ [key]: key === 'routePrefix' ? 'api/auth' : true }));
      expect(error).toBeInstanceOf(OtpAuthConfigurationError);
      expect(error.message).toBe(
        `OtpAuthModule: \`${key}\` is a definition-time option: pass it to forRootAsync({ ${key}, useFactory }) beside the factory, not in the object the factory returns.`,
      );
    });

    it('accepts the definition-time options in forRoot options, and undefined ones from a factory', () => {
      // forRoot(options) is both at once: Nest's builder strips isGlobal/routePrefix/mountRoutes and
      // leaves the others in the options object.
      expect(() =>
        resolve(loose({ sender: class {}, extraProviders: [], storeUnavailableFilter: false, routePrefix: 'x' })),
      ).not.toThrow();
      expect(() => factory({ routePrefix: undefined, sender: undefined })).not.toThrow();
      // A typo of one is still a typo.
      expect(() => factory({ routeprefix: 'api' })).toThrow('did you mean `routePrefix`?');
    });
  });
});
