import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { throwError } from 'rxjs';
import { OtpServiceUnavailableException, RetryLaterException } from '../errors.js';

/** One warning per this many ms while the database stays unreachable, not one per request. */
const WARNING_INTERVAL_MS = 10_000;

/**
 * Answers every exception of the module that carries a wait (`retryAfterSeconds`) with its status,
 * its JSON body and `Retry-After`, on Express and Fastify: 429s ({@link RetryLaterException}: rate
 * limits, the resend cooldown) and 503s ({@link OtpServiceUnavailableException}: an unreachable
 * database, counter storage down under `'fail-closed'`). Registered globally by the module (unless
 * `retryAfterFilter: false`), so routes the app mounts itself and that call `OtpAuthService` get
 * the header too; it catches only these exceptions, so the app's own filters see everything else.
 * Logs a database outage's cause (the driver's message, which carries no request data) at most
 * every 10 s.
 */
@Catch(OtpServiceUnavailableException, RetryLaterException)
export class RetryAfterFilter implements ExceptionFilter<OtpServiceUnavailableException | RetryLaterException> {
  private readonly logger = new Logger('OtpAuth');
  private lastWarning = -Infinity;

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: OtpServiceUnavailableException | RetryLaterException, host: ArgumentsHost): unknown {
    const now = performance.now();
    // Counter-storage outages are reported by the rate limiter itself; they carry no cause.
    if (
      exception instanceof OtpServiceUnavailableException &&
      exception.cause !== undefined &&
      now - this.lastWarning >= WARNING_INTERVAL_MS
    ) {
      this.lastWarning = now;
      const cause = exception.cause instanceof Error ? exception.cause.message : String(exception.cause);
      this.logger.warn(`Database unreachable; answering 503: ${cause}`);
    }
    const type = host.getType<string>();
    // GraphQL takes the exception back as the result; RPC and WebSocket handlers take an error
    // stream (a filter that throws there would escape as an unhandled rejection).
    if (type === 'graphql') return exception;
    if (type !== 'http') return throwError(() => exception);
    const adapter = this.adapterHost.httpAdapter;
    const response: unknown = host.switchToHttp().getResponse();
    adapter.setHeader(response, 'Retry-After', String(exception.retryAfterSeconds));
    adapter.setHeader(response, 'Cache-Control', 'no-store');
    adapter.reply(response, exception.getResponse(), exception.getStatus());
    return undefined;
  }
}
