import { Logger, type FactoryProvider } from '@nestjs/common';
import { FallbackRateLimitStorage } from './fallback-rate-limit.storage.js';
import { InMemoryRateLimitStorage } from './in-memory-rate-limit.storage.js';
import { OTP_RATE_LIMIT_STORAGE, type RateLimitStorage } from './rate-limit-storage.interface.js';
import { OTP_RATE_LIMIT_CONFIG, type RateLimitConfig } from './rate-limit.options.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/**
 * The storage the module counts in: `rateLimits.storage` behind the `onStorageError` policy, or a
 * bounded in-memory storage when none is configured.
 */
export function createRateLimitStorage(config: RateLimitConfig, events: OtpAuthEvents): RateLimitStorage {
  const { storage, onStorageError } = config.rateLimits;
  if (!storage) return new InMemoryRateLimitStorage();
  // Memory cannot fail, and a fallback the app built carries its own policy and timeout:
  // wrapping it again would let the module's policy override the app's.
  if (storage instanceof InMemoryRateLimitStorage || storage instanceof FallbackRateLimitStorage) return storage;
  const logger = new Logger('OtpAuth');
  return new FallbackRateLimitStorage({
    primary: storage,
    policy: onStorageError,
    onError: (error, info) => {
      const message = (error as Error)?.message ?? String(error);
      logger.warn(
        `Rate-limit storage unreachable (${info.operation}); applying policy '${info.policy}'` +
          (info.suppressed > 0 ? ` (${info.suppressed} more errors since the last report)` : '') +
          `: ${message}`,
      );
      events.emit({ type: 'rate_limit.storage_unavailable', policy: info.policy, error: message });
    },
    onRecover: () => logger.log('Rate-limit storage reachable again.'),
  });
}

/**
 * Provides {@link OTP_RATE_LIMIT_STORAGE}: one instance per module, shared by `OtpRateLimiter`,
 * stateless codes and whatever the app injects it into (e.g. `RateLimitThrottlerStorage`).
 * `OtpRateLimiter` connects it at startup and closes it at shutdown.
 */
export const rateLimitStorageProvider: FactoryProvider<RateLimitStorage> = {
  provide: OTP_RATE_LIMIT_STORAGE,
  inject: [OTP_RATE_LIMIT_CONFIG, OtpAuthEvents],
  useFactory: createRateLimitStorage,
};
