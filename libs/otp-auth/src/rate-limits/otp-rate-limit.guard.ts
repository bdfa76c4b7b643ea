import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { OTP_RATE_LIMIT_CONFIG, type RateLimitConfig } from './rate-limit.options.js';
import { Reflector } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { resolveClientIp } from './client-ip.js';
import { OtpRateLimiter, RATE_LIMITED_ACTION, type RateLimitedAction } from './otp-rate-limiter.js';
import { TooManyRequestsException } from '../errors.js';

/** The parts of an Express or Fastify request/response the guard touches. */
interface LimitedRequest {
  readonly raw?: IncomingMessage;
}
interface LimitedResponse {
  header(name: string, value: string): unknown;
}

/**
 * Applies {@link OtpRateLimiter} to routes marked with `@RateLimited(...)`: counts the request
 * under the client's IP (and IPv6 prefixes) and the global counter; sets `RateLimit-Policy`,
 * `RateLimit` and, when refusing, `Retry-After`; refuses with 429. It runs before the body is
 * validated, so it never charges an address: the service does that for requests that pass
 * validation and the resend cooldown (see {@link OtpRateLimiter.checkAddress}).
 */
@Injectable()
export class OtpRateLimitGuard implements CanActivate {
  constructor(
    @Inject(OTP_RATE_LIMIT_CONFIG) private readonly config: RateLimitConfig,
    private readonly reflector: Reflector,
    private readonly limiter: OtpRateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const action = this.reflector.getAllAndOverride<RateLimitedAction | undefined>(RATE_LIMITED_ACTION, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (action === undefined || !this.config.rateLimits.enabled) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<LimitedRequest>();
    const response = http.getResponse<LimitedResponse>();
    const raw = request.raw ?? (request as unknown as IncomingMessage);
    const ip = resolveClientIp(raw, this.config.rateLimits.trustProxy);
    // Storage down under 'fail-closed' throws RateLimitUnavailableException (503), answered by the
    // module's RetryAfterFilter like every exception that carries a wait.
    const verdict = await this.limiter.checkClient(action, ip, context.getHandler().name);
    if (verdict.headers) {
      for (const [name, value] of Object.entries(verdict.headers))
        if (value !== undefined) response.header(name, value);
    }
    if (!verdict.allowed) {
      // The longest wait of all counters, not only of those described in the RateLimit headers;
      // the module's RetryAfterFilter turns it into the Retry-After header.
      throw new TooManyRequestsException(verdict.retryAfter);
    }
    return true;
  }
}
