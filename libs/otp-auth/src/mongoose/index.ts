/**
 * nestjs-otp-auth/mongoose: MongoDB persistence through Mongoose, behind its own entry point.
 * Importing it loads `mongoose` and never TypeORM (nothing here imports `typeorm` or
 * `nestjs-otp-auth/typeorm`); importing `nestjs-otp-auth` itself loads neither.
 *
 * @packageDocumentation
 */
export {
  MongooseOtpAuthStore,
  isDuplicateKeyError,
  isMongoUnavailable,
  DEFAULT_OTP_COLLECTION_PREFIX,
  DEFAULT_CODE_RETENTION_SECONDS,
  type MongooseOtpAuthStoreOptions,
} from './mongoose-otp-auth.store.js';
export {
  OTP_AUTH_COLLECTIONS,
  otpAuthSchemas,
  otpCodeSchema,
  otpSessionSchema,
  otpRefreshTokenSchema,
  otpRevocationSchema,
  otpTotpSchema,
  otpBackupCodeSchema,
  otpMfaChallengeSchema,
  otpUserSchemaDefinition,
  createOtpUserSchema,
  withOtpUserFields,
  type OtpAuthCollection,
  type OtpUserFields,
  type OtpUser,
  type OtpCodeDoc,
  type OtpSessionDoc,
  type OtpRefreshTokenDoc,
  type OtpRevocationDoc,
  type OtpTotpDoc,
  type OtpBackupCodeDoc,
  type OtpMfaChallengeDoc,
} from './schemas.js';
