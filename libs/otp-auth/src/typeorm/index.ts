/**
 * TypeORM persistence for nestjs-otp-auth (SQLite, PostgreSQL, MySQL/MariaDB).
 *
 * @packageDocumentation
 */
export {
  OtpBaseUser,
  OtpCodeEntity,
  OtpSessionEntity,
  OtpRefreshTokenEntity,
  OtpRevocationEntity,
  OtpTotpEntity,
  OtpBackupCodeEntity,
  OtpMfaChallengeEntity,
  otpAuthEntities,
} from './entities.js';
export {
  TypeOrmOtpAuthStore,
  isDatabaseUnavailable,
  isUniqueViolation,
  type TypeOrmOtpAuthStoreOptions,
} from './typeorm-otp-auth.store.js';
export { OtpAuthMigration1733300000000, otpAuthMigrations } from './migrations.js';
