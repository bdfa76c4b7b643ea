import {
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnsupportedMediaTypeException,
  type CanActivate,
  type CustomDecorator,
  type ExecutionContext,
} from '@nestjs/common';
import { OTP_HTTP_CONFIG, type HttpConfig } from './refresh-transport.options.js';
import { Reflector } from '@nestjs/core';
import type { AuthRequest } from './auth-request.js';
import { isCrossSite } from './refresh-cookie.js';

/** Metadata key of {@link SetsRefreshCookie}. */
export const SETS_REFRESH_COOKIE = 'otp-auth:sets-refresh-cookie';

/** Metadata key of {@link AcceptsBodyTypes}. */
export const ACCEPTED_BODY_TYPES = 'otp-auth:accepted-body-types';

/** The message of the 403 answered to a cross-site request on a route that sets or clears the cookie. */
export const CROSS_SITE_MESSAGE = 'Cross-site requests cannot set, use or clear the session cookie.';

/**
 * Marks a route that sets or clears the refresh cookie (sign-in, refresh, logout):
 * {@link RefreshCookieOriginGuard} refuses cross-site requests to it.
 */
export function SetsRefreshCookie(): CustomDecorator<string> {
  return SetMetadata(SETS_REFRESH_COOKIE, true);
}

/**
 * The media types {@link JsonBodyGuard} accepts on a route, instead of `application/json` alone.
 *
 * @param types - Lower-case media types without parameters, e.g. `application/x-www-form-urlencoded`.
 */
export function AcceptsBodyTypes(...types: string[]): CustomDecorator<string> {
  return SetMetadata(ACCEPTED_BODY_TYPES, types);
}

/**
 * Refuses with 403, before the route's own guards (rate limits) and handler, a cross-site request (see
 * `isCrossSite`: `Sec-Fetch-Site: cross-site`, or an `Origin` that is neither this host nor one of
 * `cookie.allowedOrigins`) to a route marked {@link SetsRefreshCookie}, whenever the delivery mode
 * uses the cookie, whether or not one is presented. Otherwise another site could sign the browser
 * into the attacker's account (login CSRF), or end or rotate its session. Requests without `Origin`
 * and `Sec-Fetch-Site` (curl, servers, apps) pass.
 */
@Injectable()
export class RefreshCookieOriginGuard implements CanActivate {
  constructor(
    @Inject(OTP_HTTP_CONFIG) private readonly config: HttpConfig,
    private readonly reflector: Reflector,
  ) {}

  /** @throws ForbiddenException for a cross-site request to a marked route. */
  canActivate(context: ExecutionContext): boolean {
    if (this.config.refreshTokenDelivery === 'body') return true;
    const marked = this.reflector.getAllAndOverride<boolean | undefined>(SETS_REFRESH_COOKIE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (marked !== true) return true;
    if (isCrossSite(context.switchToHttp().getRequest<AuthRequest>(), this.config.cookie.allowedOrigins)) {
      throw new ForbiddenException(CROSS_SITE_MESSAGE);
    }
    return true;
  }
}

/** The request fields {@link JsonBodyGuard} reads (Express and Fastify both have them). */
interface BodyRequest {
  readonly method?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** The media type of a `Content-Type` value, lower-cased, without parameters; undefined when absent. */
export function mediaTypeOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? (header[0] ?? '') : header;
  return value.split(';', 1)[0]!.trim().toLowerCase();
}

/** Whether the request headers announce a body (a non-zero `Content-Length`, or any `Transfer-Encoding`). */
function announcesBody(headers: BodyRequest['headers']): boolean {
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined) return true;
  return length !== undefined && String(length).trim() !== '0';
}

/**
 * Refuses with 415 a `POST` whose body is not `application/json` (parameters such as `charset`
 * allowed), or whose route's {@link AcceptsBodyTypes} does not list its type. A `POST` without
 * `Content-Type` passes only without a body (`refresh` with the cookie, `logout`). HTML forms cannot
 * send JSON, so this keeps cross-site form posts (and `text/plain` fetches, which need no CORS
 * preflight) from reaching the handlers.
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  /** @throws UnsupportedMediaTypeException for a body of another type. */
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<BodyRequest>();
    if (request.method?.toUpperCase() !== 'POST') return true;
    const accepted = this.reflector.getAllAndOverride<string[] | undefined>(ACCEPTED_BODY_TYPES, [
      context.getHandler(),
      context.getClass(),
    ]) ?? ['application/json'];
    const type = mediaTypeOf(request.headers['content-type']);
    if (type === undefined ? !announcesBody(request.headers) : accepted.includes(type)) return true;
    throw new UnsupportedMediaTypeException(`The request body must be ${accepted.join(' or ')}.`);
  }
}
