import { SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';

/** Route metadata set by {@link Public}: `true` on routes that need no access token. */
export const IS_PUBLIC_ROUTE = 'otp-auth:public';

/**
 * Opts a route (or every route of a controller) out of `OtpAuthGuard` and `VerifiedUserGuard`,
 * for apps that run one of them as a global guard (`globalGuard: true`, or
 * `{ provide: APP_GUARD, useExisting: OtpAuthGuard }`): requests without a valid access token pass.
 * A valid token's claims are still attached when one is presented.
 *
 * It applies to those guards wherever they are listed, also in `@UseGuards` on the same route or
 * controller: in a `@Public()` controller, leave the decorator off the class and put it on the
 * methods that are public.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_ROUTE, true);

/**
 * Whether the route handling `context` is marked {@link Public} (method first, then class). The
 * guards ask only when they would otherwise refuse or query the database, so a request with a
 * valid token through `OtpAuthGuard` never pays for the lookup.
 */
export function isPublicRoute(reflector: Reflector, context: ExecutionContext): boolean {
  return (
    reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_ROUTE, [context.getHandler(), context.getClass()]) ===
    true
  );
}
