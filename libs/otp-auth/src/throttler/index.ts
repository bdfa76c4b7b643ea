/**
 * nestjs-otp-auth/throttler: `@nestjs/throttler` counting in the module's rate-limit storage,
 * behind its own entry point because its types come from `@nestjs/throttler`, an optional peer.
 *
 * @packageDocumentation
 */
export {
  RateLimitThrottlerStorage,
  type RateLimitThrottlerStorageOptions,
  type ThrottlerStorageRecord,
} from '../rate-limits/throttler-storage.js';
