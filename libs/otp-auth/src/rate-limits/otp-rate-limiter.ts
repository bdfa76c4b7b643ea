import { Inject, Injectable, Logger, SetMetadata, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { OTP_RATE_LIMIT_CONFIG, type RateLimitConfig } from './rate-limit.options.js';
import { SecretKeys } from '../crypto/secret-keys.js';
import { rateLimitHeaders, retryAfterSeconds, type RateLimitHeaders } from './rate-limit-headers.js';
import type { RateLimitRule } from './rate-limit-rules.js';
import {
  OTP_RATE_LIMIT_STORAGE,
  type RateLimitCounter,
  type RateLimitStorage,
} from './rate-limit-storage.interface.js';
import { rateLimitKeyForIp, rateLimitKeysForIpv6Prefixes } from './client-ip.js';
import { RateLimitUnavailableError, RateLimitUnavailableException } from '../errors.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/** What a request does, for rate limiting: send a code, or check a code / second factor. */
export type RateLimitedAction = 'send' | 'verify';

/** The identities a request is counted under. */
export interface RateLimitSubject {
  /** Normalised email address, when the request names one. */
  readonly email?: string;
  /** Client IP address. */
  readonly ip?: string;
}

/** One counter and the scope name it is reported under (`send-ip`, `verify-email-total`). */
interface NamedCounter {
  readonly name: string;
  readonly counter: RateLimitCounter;
}

function counter(
  into: NamedCounter[],
  action: RateLimitedAction,
  name: string,
  rule: RateLimitRule | false,
  id: string,
): void {
  if (rule === false) return;
  into.push({
    name: `${action}-${name}`,
    counter: { key: `${action}:${name}:${id}`, limit: rule.limit, windowMs: rule.window * 1000 },
  });
}

/** The outcome of {@link OtpRateLimiter.check}: the headers to send, and whether to proceed. */
export interface RateLimitVerdict {
  readonly allowed: boolean;
  readonly headers: RateLimitHeaders | undefined;
  /** Seconds to wait when refused. */
  readonly retryAfter: number;
}

const RATE_LIMITED_ACTION = 'otp-auth:rate-limited-action';

/** Marks a route for {@link OtpRateLimitGuard}: counted as sending or verifying. */
export const RateLimited = (action: RateLimitedAction): MethodDecorator & ClassDecorator =>
  SetMetadata(RATE_LIMITED_ACTION, action);

/** Reads the {@link RateLimited} mark; for the guard. */
export { RATE_LIMITED_ACTION };

/**
 * The module's request limits: per email, per IP and global, for sending and for verifying, on a
 * pluggable storage (memory or Redis). Usable directly by apps that mount their own routes.
 */
@Injectable()
export class OtpRateLimiter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('OtpAuth');

  constructor(
    @Inject(OTP_RATE_LIMIT_CONFIG) private readonly config: RateLimitConfig,
    private readonly keys: SecretKeys,
    private readonly events: OtpAuthEvents,
    /**
     * Where counters live (after the failure policy): the {@link OTP_RATE_LIMIT_STORAGE} provider,
     * which apps can inject too. Stateless codes keep their markers here as well.
     */
    @Inject(OTP_RATE_LIMIT_STORAGE) readonly storage: RateLimitStorage,
  ) {}

  async onModuleInit(): Promise<void> {
    // Also when request limits are off: stateless codes keep their markers in this storage.
    // The wrapper's own init: it marks the primary down and prepares its local fallback.
    if (!this.storage.init) return;
    try {
      await this.storage.init();
    } catch (error) {
      this.logger.warn(
        `Rate-limit storage not reachable at startup; applying policy '${this.config.rateLimits.onStorageError}' until it is: ${(error as Error).message}`,
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.storage.close?.();
  }

  /**
   * Counts one request of `action` for `subject`, under every configured counter at once: the
   * client's and, when the subject names an address, the address's.
   * @throws RateLimitUnavailableException (503) when storage is down under `'fail-closed'`.
   */
  check(action: RateLimitedAction, subject: RateLimitSubject, route: string = action): Promise<RateLimitVerdict> {
    const counters = this.clientCounters(action, subject.ip);
    if (subject.email !== undefined) counters.push(...this.addressCounters(action, subject.email, subject.ip));
    return this.count(counters, route);
  }

  /**
   * The client's own counters (per IP and IPv6 prefix) and the global one: what the route guard
   * charges before the body is even read.
   */
  checkClient(action: RateLimitedAction, ip: string | undefined, route: string = action): Promise<RateLimitVerdict> {
    return this.count(this.clientCounters(action, ip), route);
  }

  /**
   * The address's counters, per (address, client network) and address-wide. Charged by the
   * service only for a request that passed validation and the resend cooldown, so refusals never
   * spend an owner's allowance. `ip` undefined (an app calling the service without one) counts
   * all such calls as one client.
   */
  checkAddress(
    action: RateLimitedAction,
    email: string,
    ip: string | undefined,
    route: string = action,
  ): Promise<RateLimitVerdict> {
    return this.count(this.addressCounters(action, email, ip), route);
  }

  private clientCounters(action: RateLimitedAction, ip: string | undefined): NamedCounter[] {
    const scopes = this.config.rateLimits[action];
    const counters: NamedCounter[] = [];
    if (ip !== undefined) {
      counter(counters, action, 'ip', scopes.perIp, rateLimitKeyForIp(ip));
      const prefixes = rateLimitKeysForIpv6Prefixes(ip);
      if (prefixes) {
        counter(counters, action, 'ip56', scopes.perIpv6Prefix56, prefixes.prefix56);
        counter(counters, action, 'ip48', scopes.perIpv6Prefix48, prefixes.prefix48);
      }
    }
    counter(counters, action, 'global', scopes.global, 'all');
    return counters;
  }

  private addressCounters(action: RateLimitedAction, email: string, ip: string | undefined): NamedCounter[] {
    const scopes = this.config.rateLimits[action];
    const id = this.keys.identityKeyOf(email);
    const network = ip === undefined ? 'none' : rateLimitKeyForIp(ip);
    const counters: NamedCounter[] = [];
    counter(counters, action, 'email', scopes.perEmail, `${id}:${network}`);
    counter(counters, action, 'email-total', scopes.perEmailTotal, id);
    if ('perEmailDaily' in scopes) {
      counter(counters, action, 'email-daily', scopes.perEmailDaily, `${id}:${network}`);
      counter(counters, action, 'email-daily-total', scopes.perEmailDailyTotal, id);
    }
    return counters;
  }

  private async count(named: readonly NamedCounter[], route: string): Promise<RateLimitVerdict> {
    if (!this.config.rateLimits.enabled || named.length === 0) {
      return { allowed: true, headers: undefined, retryAfter: 0 };
    }
    const counters = named.map((entry) => entry.counter);
    const names = named.map((entry) => entry.name);

    let decision;
    try {
      decision = await this.storage.consume(counters, this.config.clock());
    } catch (error) {
      if (error instanceof RateLimitUnavailableError) {
        throw new RateLimitUnavailableException(retryAfterSeconds(error.retryAfterMs));
      }
      throw error;
    }
    // Headers describe only the client's own counters (IP) and the global one: per-address counts
    // would tell a stranger how often someone else's address was used.
    const visible = names.flatMap((name, i) => (name.includes('-email') ? [] : [i]));
    const headers =
      visible.length > 0
        ? rateLimitHeaders(
            { allowed: decision.allowed, counters: visible.map((i) => decision.counters[i]!) },
            visible.map((i) => names[i]!),
          )
        : undefined;
    if (decision.allowed) return { allowed: true, headers, retryAfter: 0 };
    const refused = decision.counters.findIndex((c) => c.remaining === 0 && c.retryAfterMs > 0);
    this.events.emit({ type: 'rate_limit.exceeded', scope: names[Math.max(0, refused)]!, route });
    // Retry-After covers every counter, or the client would retry into the same refusal.
    const retryAfter = retryAfterSeconds(Math.max(...decision.counters.map((c) => c.retryAfterMs)));
    return { allowed: false, headers, retryAfter };
  }
}
