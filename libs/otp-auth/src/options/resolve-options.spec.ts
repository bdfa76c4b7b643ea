import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { OtpAuthModuleOptions } from './otp-auth-options.interface.js';
import { OTP_AUTH_DEFAULTS, OtpAuthConfigurationError, resolveOtpAuthOptions } from './resolve-options.js';

const SECRET = 'a'.repeat(32);
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
      const long = 'b'.repeat(64);
      expect(resolve({ secret: long }).secret).toBe(long);
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
});
