import 'reflect-metadata';
import { jest } from '@jest/globals';
import { ForbiddenException, Logger, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';
import type { AccessTokenService } from '../tokens/access-token.service.js';
import type { AuthRequest } from './auth-request.js';
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

describe('OtpAuthGuard with @Public()', () => {
  const reflector = new Reflector();

  it('refuses a route without the mark and without a token (401)', () => {
    const guard = new OtpAuthGuard(fakeTokens().service, reflector);
    expect(() => guard.canActivate(http({ headers: {} }, Routes.prototype.closed))).toThrow(UnauthorizedException);
    expect(() => guard.canActivate(http(bearer('forged'), Routes.prototype.closed))).toThrow(UnauthorizedException);
  });

  it('admits a public method or a method of a public class without a token, or with a bad one', () => {
    const guard = new OtpAuthGuard(fakeTokens().service, reflector);
    expect(guard.canActivate(http({ headers: {} }, Routes.prototype.open))).toBe(true);
    expect(guard.canActivate(http(bearer('expired'), Routes.prototype.open))).toBe(true);
    expect(guard.canActivate(http({ headers: {} }, PublicRoutes.prototype.any, PublicRoutes))).toBe(true);
  });

  it('still attaches the claims of a valid token on a public route', () => {
    const guard = new OtpAuthGuard(fakeTokens().service, reflector);
    const request = bearer('good');
    expect(guard.canActivate(http(request, Routes.prototype.open))).toBe(true);
    expect(request.otpAuth?.claims.sub).toBe('user-1');
  });

  it('does not read route metadata for a request with a valid token (the hot path)', () => {
    const spy = new Reflector();
    const lookup = jest.spyOn(spy, 'getAllAndOverride');
    const guard = new OtpAuthGuard(fakeTokens().service, spy);
    for (let i = 0; i < 3; i++) guard.canActivate(http(bearer('good'), Routes.prototype.closed));
    expect(lookup).not.toHaveBeenCalled();
    expect(() => guard.canActivate(http({ headers: {} }, Routes.prototype.closed))).toThrow(UnauthorizedException);
    expect(lookup).toHaveBeenCalledTimes(1);
  });
});

/** The README's GraphQL recipe, without @nestjs/graphql: the request is the third argument's `req`. */
class GqlOtpAuthGuard extends OtpAuthGuard {
  protected override getRequest(context: ExecutionContext): AuthRequest {
    return context.getArgByIndex<{ req: AuthRequest }>(2).req;
  }
}

describe('guards with an overridden getRequest (GraphQL)', () => {
  const reflector = new Reflector();

  it('OtpAuthGuard: a subclass reads the token from its own request and attaches the claims there', () => {
    const request = bearer('good');
    const guard = new GqlOtpAuthGuard(fakeTokens().service, reflector);
    expect(guard.canActivate(graphql(request))).toBe(true);
    expect(request.otpAuth?.claims.sid).toBe('session-1');
    expect(() => guard.canActivate(graphql(bearer('forged')))).toThrow(UnauthorizedException);
    expect(guard.canActivate(graphql({ headers: {} }, Routes.prototype.open))).toBe(true);
  });

  it('the base class on a GraphQL context refuses with 401 (no TypeError), says why once, and admits @Public()', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const guard = new OtpAuthGuard(fakeTokens().service, reflector);
    expect(() => guard.canActivate(graphql(bearer('good')))).toThrow(UnauthorizedException);
    expect(() => guard.canActivate(graphql(bearer('good')))).toThrow(UnauthorizedException);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toContain("no HTTP request in a 'graphql' context");
    warn.mockRestore();
    expect(guard.canActivate(graphql(bearer('good'), Routes.prototype.open))).toBe(true);
  });

  it('VerifiedUserGuard: a subclass loads the user; public routes need no store lookup', async () => {
    const findUserById = jest.fn(async (id: string) => ({
      id,
      email: 'a@example.com',
      isVerified: true,
      entity: { id },
    }));
    const config = { store: { findUserById }, totp: { required: () => false } } as unknown as ResolvedOtpAuthOptions;
    class GqlVerifiedUserGuard extends VerifiedUserGuard {
      protected override getRequest(context: ExecutionContext): AuthRequest {
        return context.getArgByIndex<{ req: AuthRequest }>(2).req;
      }
    }
    const guard = new GqlVerifiedUserGuard(fakeTokens().service, config, reflector);
    const request = bearer('good');
    await expect(guard.canActivate(graphql(request))).resolves.toBe(true);
    expect(request.otpAuth?.user).toEqual({ id: 'user-1' });
    expect(findUserById).toHaveBeenCalledTimes(1);

    const publicRequest = bearer('good');
    await expect(guard.canActivate(graphql(publicRequest, Routes.prototype.open))).resolves.toBe(true);
    expect(publicRequest.otpAuth?.claims.sub).toBe('user-1');
    expect(publicRequest.otpAuth?.user).toBeUndefined();
    await expect(guard.canActivate(graphql({ headers: {} }, Routes.prototype.open))).resolves.toBe(true);
    expect(findUserById).toHaveBeenCalledTimes(1);
    await expect(guard.canActivate(graphql({ headers: {} }))).rejects.toThrow(UnauthorizedException);
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
