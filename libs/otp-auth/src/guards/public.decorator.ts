import { SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';

/** Route metadata set by {@link Public}: `true` on routes that need no access token. */
export const IS_PUBLIC_ROUTE = 'otp-auth:public';

/**
 * Opts a route (or every route of a controller) out of the global guard, `OtpAuthGlobalGuard`
 * (`globalGuard: true`, or `{ provide: APP_GUARD, useExisting: OtpAuthGlobalGuard }`): requests
 * without a valid access token pass it. A valid token's claims are still attached when one is
 * presented.
 *
 * `@Public()` is read only by the global guard. Guards listed with `@UseGuards`
 * (`OtpAuthGuard`, `VerifiedUserGuard`, `@RequireMfa()`, ...) always enforce, even on `@Public()`
 * routes and in `@Public()` controllers.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_ROUTE, true);

/**
 * Whether the route handling `context` is marked {@link Public} (method first, then class). The
 * global guard asks only when it would otherwise refuse, so a request with a valid token never
 * pays for the lookup.
 */
export function isPublicRoute(reflector: Reflector, context: ExecutionContext): boolean {
  return (
    reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_ROUTE, [context.getHandler(), context.getClass()]) ===
    true
  );
}
