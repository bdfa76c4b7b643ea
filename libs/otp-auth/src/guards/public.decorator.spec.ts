import 'reflect-metadata';
import { jest } from '@jest/globals';
import { ForbiddenException, Logger, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';
import type { AccessTokenService } from '../tokens/access-token.service.js';
import type { AuthRequest } from '../http/auth-request.js';
import { OtpAuthGlobalGuard } from './otp-auth-global.guard.js';
import { OtpAuthGuard } from './otp-auth.guard.js';
import { IS_PUBLIC_ROUTE, Public } from './public.decorator.js';
import { RECENT_SIGN_IN_MAX_AGE, RecentSignInGuard } from './recent-sign-in.guard.js';
import { MfaGuard } from './require-mfa.js';
import { VerifiedUserGuard } from './verified-user.guard.js';

const NOW = 1_700_000_000_000;

function claims(overrides: Partial<AccessTokenClaims> = {}): AccessTokenClaims {
  return {
    sub: 'user-1',
    sid: 'session-1',
    jti: 'jti-1',
    typ: 'access',
    amr: ['otp'],
    auth_time: NOW / 1000,
    iat: NOW / 1000,
    exp: NOW / 1000 + 3600,
    iss: 'nestjs-otp-auth',
    aud: 'nestjs-otp-auth',
    ...overrides,
  } as AccessTokenClaims;
}

/** Accepts the token "good" (and "good-mfa" with a second factor), refuses everything else with 401. */
function fakeTokens() {
  const verify = jest.fn((token: string): AccessTokenClaims => {
    if (token === 'good') return claims();
    if (token === 'good-mfa') return claims({ amr: ['otp', 'totp'] });
    throw new UnauthorizedException('Invalid or expired access token');
  });
  return { verify, service: { verify } as unknown as AccessTokenService };
}

/** A store with one verified user, "user-1" (`gone` removes it), and no 2FA requirement. */
function fakeConfig() {
  let present = true;
  const findUserById = jest.fn(async (id: string) =>
    present && id === 'user-1' ? { id, email: 'a@example.com', isVerified: true, entity: { id } } : null,
  );
  const config = { store: { findUserById }, totp: { required: () => false } } as unknown as ResolvedOtpAuthOptions;
  return {
    findUserById,
    config,
    gone: () => {
      present = false;
    },
  };
}

class Routes {
  @Public()
  open(): void {}
  closed(): void {}
}

@Public()
class PublicRoutes {
  any(): void {}
}

function http(request: AuthRequest, handler: () => void, cls: object = Routes): ExecutionContext {
  return new ExecutionContextHost([request, { header: jest.fn() }], cls as never, handler);
}

/** What `GqlExecutionContext` sees: [root, args, context, info], with the HTTP request in `context.req`. */
function graphql(request: AuthRequest, handler: () => void = Routes.prototype.closed): ExecutionContext {
  const host = new ExecutionContextHost([undefined, {}, { req: request }, {}], Routes as never, handler);
  host.setType('graphql');
  return host;
}

const bearer = (token: string): AuthRequest => ({ headers: { authorization: `Bearer ${token}` } });

describe('@Public()', () => {
  it('marks a method or a class under IS_PUBLIC_ROUTE', () => {
    const reflector = new Reflector();
    expect(reflector.get(IS_PUBLIC_ROUTE, Routes.prototype.open)).toBe(true);
    expect(reflector.get(IS_PUBLIC_ROUTE, Routes.prototype.closed)).toBeUndefined();
    expect(reflector.get(IS_PUBLIC_ROUTE, PublicRoutes)).toBe(true);
  });
});

describe('OtpAuthGlobalGuard (the only guard that reads @Public())', () => {
  const reflector = new Reflector();

  it('refuses a route without the mark, without a token or with a bad one (401)', () => {
    const guard = new OtpAuthGlobalGuard(fakeTokens().service, reflector);
    expect(() => guard.canActivate(http({ headers: {} }, Routes.prototype.closed))).toThrow(UnauthorizedException);
    expect(() => guard.canActivate(http(bearer('forged'), Routes.prototype.closed))).toThrow(UnauthorizedException);
  });

  it('admits a public method or a method of a public class without a token, or with a bad one', () => {
    const guard = new OtpAuthGlobalGuard(fakeTokens().service, reflector);
    expect(guard.canActivate(http({ headers: {} }, Routes.prototype.open))).toBe(true);
    expect(guard.canActivate(http(bearer('expired'), Routes.prototype.open))).toBe(true);
    expect(guard.canActivate(http({ headers: {} }, PublicRoutes.prototype.any, PublicRoutes))).toBe(true);
    expect(guard.canActivate(http(bearer('expired'), PublicRoutes.prototype.any, PublicRoutes))).toBe(true);
  });

  it('still attaches the claims of a valid token, on public and other routes', () => {
    const guard = new OtpAuthGlobalGuard(fakeTokens().service, reflector);
    const open = bearer('good');
    expect(guard.canActivate(http(open, Routes.prototype.open))).toBe(true);
    expect(open.otpAuth?.claims.sub).toBe('user-1');
    const closed = bearer('good');
    expect(guard.canActivate(http(closed, Routes.prototype.closed))).toBe(true);
    expect(closed.otpAuth?.claims.sub).toBe('user-1');
  });

  it('does not read route metadata for a request with a valid token (the hot path)', () => {
    const spy = new Reflector();
    const lookup = jest.spyOn(spy, 'getAllAndOverride');
    const guard = new OtpAuthGlobalGuard(fakeTokens().service, spy);
    for (let i = 0; i < 3; i++) guard.canActivate(http(bearer('good'), Routes.prototype.closed));
    for (let i = 0; i < 3; i++) guard.canActivate(http(bearer('good'), Routes.prototype.open));
    expect(lookup).not.toHaveBeenCalled();
    expect(() => guard.canActivate(http({ headers: {} }, Routes.prototype.closed))).toThrow(UnauthorizedException);
    expect(lookup).toHaveBeenCalledTimes(1);
  });
});

describe('guards listed with @UseGuards ignore @Public()', () => {
  it('OtpAuthGuard refuses a public method or a public class without a valid token (401)', () => {
    const lookup = jest.spyOn(Reflector.prototype, 'getAllAndOverride');
    try {
      const guard = new OtpAuthGuard(fakeTokens().service);
      expect(() => guard.canActivate(http({ headers: {} }, Routes.prototype.open))).toThrow(UnauthorizedException);
      expect(() => guard.canActivate(http(bearer('expired'), Routes.prototype.open))).toThrow(UnauthorizedException);
      expect(() => guard.canActivate(http({ headers: {} }, PublicRoutes.prototype.any, PublicRoutes))).toThrow(
        UnauthorizedException,
      );
      expect(() => guard.canActivate(http(bearer('expired'), PublicRoutes.prototype.any, PublicRoutes))).toThrow(
        UnauthorizedException,
      );
      const request = bearer('good');
      expect(guard.canActivate(http(request, PublicRoutes.prototype.any, PublicRoutes))).toBe(true);
      expect(request.otpAuth?.claims.sub).toBe('user-1');
      expect(lookup).not.toHaveBeenCalled();
    } finally {
      lookup.mockRestore();
    }
  });

  it('VerifiedUserGuard on a public route: 401 without a valid token, and with one it loads the user', async () => {
    const { config, findUserById, gone } = fakeConfig();
    const guard = new VerifiedUserGuard(fakeTokens().service, config);
    for (const [request, handler, cls] of [
      [{ headers: {} }, Routes.prototype.open, Routes],
      [bearer('expired'), Routes.prototype.open, Routes],
      [{ headers: {} }, PublicRoutes.prototype.any, PublicRoutes],
      [bearer('expired'), PublicRoutes.prototype.any, PublicRoutes],
    ] as const) {
      await expect(guard.canActivate(http(request, handler, cls))).rejects.toThrow(UnauthorizedException);
    }
    expect(findUserById).not.toHaveBeenCalled();

    const request = bearer('good');
    await expect(guard.canActivate(http(request, PublicRoutes.prototype.any, PublicRoutes))).resolves.toBe(true);
    expect(request.otpAuth?.user).toEqual({ id: 'user-1' });
    expect(findUserById).toHaveBeenCalledTimes(1);

    gone();
    await expect(guard.canActivate(http(bearer('good'), Routes.prototype.open))).rejects.toThrow(UnauthorizedException);
  });

  it('behind the global guard, a public route with VerifiedUserGuard still needs the user', async () => {
    const { config } = fakeConfig();
    const global = new OtpAuthGlobalGuard(fakeTokens().service, new Reflector());
    const listed = new VerifiedUserGuard(fakeTokens().service, config);
    const anonymous: AuthRequest = { headers: {} };
    expect(global.canActivate(http(anonymous, Routes.prototype.open))).toBe(true);
    await expect(listed.canActivate(http(anonymous, Routes.prototype.open))).rejects.toThrow(UnauthorizedException);
    const signedIn = bearer('good');
    expect(global.canActivate(http(signedIn, Routes.prototype.open))).toBe(true);
    await expect(listed.canActivate(http(signedIn, Routes.prototype.open))).resolves.toBe(true);
    expect(signedIn.otpAuth?.user).toEqual({ id: 'user-1' });
  });
});

/** The README's GraphQL recipe, without @nestjs/graphql: the request is the third argument's `req`. */
class GqlOtpAuthGlobalGuard extends OtpAuthGlobalGuard {
  protected override getRequest(context: ExecutionContext): AuthRequest {
    return context.getArgByIndex<{ req: AuthRequest }>(2).req;
  }
}

class GqlOtpAuthGuard extends OtpAuthGuard {
  protected override getRequest(context: ExecutionContext): AuthRequest {
    return context.getArgByIndex<{ req: AuthRequest }>(2).req;
  }
}

describe('guards with an overridden getRequest (GraphQL)', () => {
  const reflector = new Reflector();

  it('OtpAuthGlobalGuard: a subclass reads the token from its own request, attaches the claims there, admits @Public()', () => {
    const request = bearer('good');
    const guard = new GqlOtpAuthGlobalGuard(fakeTokens().service, reflector);
    expect(guard.canActivate(graphql(request))).toBe(true);
    expect(request.otpAuth?.claims.sid).toBe('session-1');
    expect(() => guard.canActivate(graphql(bearer('forged')))).toThrow(UnauthorizedException);
    expect(() => guard.canActivate(graphql({ headers: {} }))).toThrow(UnauthorizedException);
    expect(guard.canActivate(graphql({ headers: {} }, Routes.prototype.open))).toBe(true);
    expect(guard.canActivate(graphql(bearer('forged'), Routes.prototype.open))).toBe(true);
  });

  it('OtpAuthGuard: a subclass reads its own request and refuses @Public() handlers without a token', () => {
    const request = bearer('good');
    const guard = new GqlOtpAuthGuard(fakeTokens().service);
    expect(guard.canActivate(graphql(request, Routes.prototype.open))).toBe(true);
    expect(request.otpAuth?.claims.sid).toBe('session-1');
    expect(() => guard.canActivate(graphql({ headers: {} }, Routes.prototype.open))).toThrow(UnauthorizedException);
  });

  it('the base classes on a GraphQL context refuse with 401 (no TypeError) and say why once; only the global one admits @Public()', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const guard = new OtpAuthGuard(fakeTokens().service);
      expect(() => guard.canActivate(graphql(bearer('good')))).toThrow(UnauthorizedException);
      expect(() => guard.canActivate(graphql(bearer('good')))).toThrow(UnauthorizedException);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[0]).toContain("OtpAuthGuard found no HTTP request in a 'graphql' context");
      expect(() => guard.canActivate(graphql(bearer('good'), Routes.prototype.open))).toThrow(UnauthorizedException);

      const global = new OtpAuthGlobalGuard(fakeTokens().service, reflector);
      expect(() => global.canActivate(graphql(bearer('good')))).toThrow(UnauthorizedException);
      expect(global.canActivate(graphql(bearer('good'), Routes.prototype.open))).toBe(true);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('VerifiedUserGuard: a subclass loads the user, also on public routes', async () => {
    const { config, findUserById } = fakeConfig();
    class GqlVerifiedUserGuard extends VerifiedUserGuard {
      protected override getRequest(context: ExecutionContext): AuthRequest {
        return context.getArgByIndex<{ req: AuthRequest }>(2).req;
      }
    }
    const guard = new GqlVerifiedUserGuard(fakeTokens().service, config);
    const request = bearer('good');
    await expect(guard.canActivate(graphql(request))).resolves.toBe(true);
    expect(request.otpAuth?.user).toEqual({ id: 'user-1' });
    expect(findUserById).toHaveBeenCalledTimes(1);

    const publicRequest = bearer('good');
    await expect(guard.canActivate(graphql(publicRequest, Routes.prototype.open))).resolves.toBe(true);
    expect(publicRequest.otpAuth?.user).toEqual({ id: 'user-1' });
    expect(findUserById).toHaveBeenCalledTimes(2);
    await expect(guard.canActivate(graphql({ headers: {} }, Routes.prototype.open))).rejects.toThrow(
      UnauthorizedException,
    );
    await expect(guard.canActivate(graphql({ headers: {} }))).rejects.toThrow(UnauthorizedException);
    expect(findUserById).toHaveBeenCalledTimes(2);
  });

  it('MfaGuard and RecentSignInGuard: subclasses read the claims from their own request', () => {
    class GqlMfaGuard extends MfaGuard {
      protected override getRequest(context: ExecutionContext): AuthRequest {
        return context.getArgByIndex<{ req: AuthRequest }>(2).req;
      }
    }
    const oneFactor: AuthRequest = { headers: {}, otpAuth: { claims: claims() } };
    const twoFactors: AuthRequest = { headers: {}, otpAuth: { claims: claims({ amr: ['otp', 'totp'] }) } };
    expect(new GqlMfaGuard().canActivate(graphql(twoFactors))).toBe(true);
    expect(() => new GqlMfaGuard().canActivate(graphql(oneFactor))).toThrow(ForbiddenException);
    expect(() => new MfaGuard().canActivate(graphql(twoFactors))).toThrow(ForbiddenException);

    const header = jest.fn();
    class GqlRecentSignInGuard extends RecentSignInGuard {
      protected override getRequest(context: ExecutionContext): AuthRequest {
        return context.getArgByIndex<{ req: AuthRequest }>(2).req;
      }
      protected override getResponse(): { header: typeof header } {
        return { header };
      }
    }
    class Sensitive {
      act(): void {}
    }
    Reflect.defineMetadata(RECENT_SIGN_IN_MAX_AGE, 60, Sensitive.prototype.act);
    const config = { clock: () => NOW + 30_000, totp: { enrollmentMaxAuthAge: 900 } } as ResolvedOtpAuthOptions;
    const recent = new GqlRecentSignInGuard(config, reflector);
    const context = (request: AuthRequest): ExecutionContext => {
      const host = new ExecutionContextHost(
        [undefined, {}, { req: request }, {}],
        Sensitive as never,
        Sensitive.prototype.act,
      );
      host.setType('graphql');
      return host;
    };
    expect(recent.canActivate(context(oneFactor))).toBe(true);
    const old: AuthRequest = { headers: {}, otpAuth: { claims: claims({ auth_time: NOW / 1000 - 3600 }) } };
    expect(() => recent.canActivate(context(old))).toThrow(UnauthorizedException);
    expect(header).toHaveBeenCalledWith('WWW-Authenticate', expect.stringContaining('max_age=60'));
  });
});
