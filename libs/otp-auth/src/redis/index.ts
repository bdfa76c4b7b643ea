/**
 * nestjs-otp-auth/redis: Redis-backed rate limiting, behind its own entry point so importing
 * `nestjs-otp-auth` never loads ioredis.
 *
 * @packageDocumentation
 */
export {
  RedisRateLimitStorage,
  RECOMMENDED_RATE_LIMIT_REDIS_OPTIONS,
  DEFAULT_RATE_LIMIT_KEY_PREFIX,
  type RedisRateLimitStorageOptions,
} from './redis-rate-limit.storage.js';
export { RedisRevocationBroadcaster, type RedisRevocationBroadcasterOptions } from './redis-revocation-broadcaster.js';
