import { Logger, type ExecutionContext } from '@nestjs/common';
import type { AccessTokenClaims } from '../tokens/access-token-claims.js';

/** What the guards attach to a request. */
export interface OtpAuthRequestState {
  claims: AccessTokenClaims;
  /** The application's user entity; set by `VerifiedUserGuard`. */
  user?: object;
}

/** The parts of an Express or Fastify request the module reads. */
export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  otpAuth?: OtpAuthRequestState;
  user?: unknown;
}

export function httpRequest(context: ExecutionContext): AuthRequest {
  return context.switchToHttp().getRequest<AuthRequest>();
}

/**
 * The token of an `Authorization: Bearer <token>` header, or undefined. Query strings are never read.
 * Undefined too when there is no HTTP request (a GraphQL or RPC context whose guard does not
 * override `getRequest`), so such calls are refused with 401 instead of failing with a TypeError.
 */
export function bearerToken(request: AuthRequest | undefined): string | undefined {
  const header = request?.headers?.['authorization'];
  if (typeof header !== 'string' || header.length < 8) return undefined;
  // Scheme names are case-insensitive (RFC 9110 §11.1).
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(7).trim();
  return token.length > 0 ? token : undefined;
}

let warnedNoHttpRequest = false;

/**
 * Logs once per process that a guard found no HTTP request to read a token from, with the fix:
 * otherwise a GraphQL app with a global guard would only see every call refused with 401.
 */
export function warnIfNoHttpRequest(request: AuthRequest | undefined, context: ExecutionContext, guard: string): void {
  if (warnedNoHttpRequest || typeof request?.headers === 'object') return;
  warnedNoHttpRequest = true;
  new Logger('OtpAuth').warn(
    `${guard} found no HTTP request in a '${context.getType()}' context, so it refused the call (401). ` +
      `Subclass ${guard} and override getRequest(context) (GraphQL: GqlExecutionContext.create(context).getContext().req); ` +
      'under the global guard (OtpAuthGlobalGuard), handlers that need no token can be marked @Public().',
  );
}
