import type { ExecutionContext } from '@nestjs/common';
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

/** The token of an `Authorization: Bearer <token>` header, or undefined. Query strings are never read. */
export function bearerToken(request: AuthRequest): string | undefined {
  const header = request.headers['authorization'];
  if (typeof header !== 'string' || header.length < 8) return undefined;
  // Scheme names are case-insensitive (RFC 9110 §11.1).
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(7).trim();
  return token.length > 0 ? token : undefined;
}
