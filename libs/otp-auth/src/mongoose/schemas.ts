import mongoose, { type Schema, type SchemaDefinition } from 'mongoose';

/*
 * The module's own collections. Times are epoch-millisecond numbers, exactly as in the TypeORM
 * store and the store interface; the only Date fields are the `purgeAt` fields that TTL indexes
 * need (MongoDB's TTL monitor reads Dates only). Natural keys (token hash, session id, revocation
 * key, user id of a TOTP enrolment, challenge id) are the `_id`, whose unique index MongoDB keeps
 * itself, so those exactly-once rules hold even before `init()` built any secondary index. Codes
 * are the exception: their one-per-address rule needs the unique (addressKey, purpose) index, so
 * run `init()` (or build the indexes) before serving traffic.
 *
 * Every schema turns off Mongoose's automatic index builds and collection creation: the store
 * builds indexes in `init()` (or checks them with `autoIndex: false`), so a model compiled on an
 * unopened connection never queues work, and an app controls when index builds happen.
 */

/** Schema options shared by the module's collections. */
const OWN_COLLECTION = {
  autoIndex: false,
  autoCreate: false,
  versionKey: false,
  // Unknown fields are dropped, never stored; queries on unknown fields match nothing.
  strict: true,
  // Reads that follow a write (a claim, then a check) must see it: never a lagging secondary.
  read: 'primary',
} as const;

/** TTL index options: MongoDB deletes a document once its `purgeAt` instant has passed. */
const TTL = { expireAfterSeconds: 0 } as const;

/** Collection name suffixes; the store prepends its `collectionPrefix` (default `otp_`). */
export const OTP_AUTH_COLLECTIONS = {
  codes: 'codes',
  sessions: 'sessions',
  refreshTokens: 'refresh_tokens',
  revocations: 'revocations',
  totp: 'totp',
  backupCodes: 'backup_codes',
  mfaChallenges: 'mfa_challenges',
} as const;

/** One of the module's collections. */
export type OtpAuthCollection = keyof typeof OTP_AUTH_COLLECTIONS;

// ---- documents ---------------------------------------------------------------------------

/**
 * One document per address and purpose: the live code (as a keyed hash), its counters and
 * cooldown. Keyed by a hex SHA-256 of the exact address (as in the TypeORM store), so no plain
 * address is stored here and no collection collation can make two addresses share a document.
 */
export interface OtpCodeDoc {
  addressKey: string;
  purpose: string;
  /** Keyed hash of the live code, or null once consumed. */
  codeHash: string | null;
  /** Compare-and-set counter; increases with every new code and every consumption. */
  generation: number;
  expiresAt: number;
  attempts: number;
  sentAt: number;
  failureCount: number;
  failureWindowStart: number | null;
  /**
   * When MongoDB may delete the document (TTL): never before the code expired and the
   * retention after its last send or counted guess passed, so the cooldown and the address-wide
   * failure window survive the code itself. Only ever moved later (`$max`).
   */
  purgeAt: Date;
}

/** A session: one refresh-token family. `_id` is the session id. */
export interface OtpSessionDoc {
  _id: string;
  userId: string;
  amr: string[];
  createdAt: number;
  revokedAt: number | null;
}

/** A refresh token, stored only as a keyed hash; `_id` is that hash, so each rotation is unique. */
export interface OtpRefreshTokenDoc {
  _id: string;
  sessionId: string;
  userId: string;
  parentHash: string | null;
  createdAt: number;
  expiresAt: number;
  /** `expiresAt` as a Date, for the TTL index. */
  purgeAt: Date;
}

/** A revocation-list entry (`sid:` or `jti:`); `_id` is the key, which makes adding idempotent. */
export interface OtpRevocationDoc {
  _id: string;
  expiresAt: number;
  createdAt: number;
  /** `expiresAt` as a Date, for the TTL index. */
  purgeAt: Date;
}

/** A user's TOTP enrolment; `_id` is the user id, so a user has at most one. */
export interface OtpTotpDoc {
  _id: string;
  encryptedSecret: string;
  keyId: string;
  active: boolean;
  lastStep: number | null;
  backupBatch: string | null;
  failureCount: number;
  failureWindowStart: number | null;
  createdAt: number;
  confirmedAt: number | null;
}

/** A backup code (salted keyed hash); valid while its batch is the enrolment's `backupBatch`. */
export interface OtpBackupCodeDoc {
  _id: string;
  userId: string;
  batch: string;
  salt: string;
  hash: string;
  usedAt: number | null;
}

/** A pending second-factor step; `_id` is the mfa token's `jti`. */
export interface OtpMfaChallengeDoc {
  _id: string;
  userId: string;
  amr: string[];
  attempts: number;
  expiresAt: number;
  consumedAt: number | null;
  /** `expiresAt` as a Date, for the TTL index. Consumed challenges stay until then (single use). */
  purgeAt: Date;
}

// ---- schemas -----------------------------------------------------------------------------

/** Schema of `otp_codes`. Unique on (addressKey, purpose); TTL on `purgeAt`. */
export const otpCodeSchema = new mongoose.Schema<OtpCodeDoc>(
  {
    addressKey: { type: String },
    purpose: { type: String },
    codeHash: { type: String, default: null },
    generation: { type: Number },
    expiresAt: { type: Number },
    attempts: { type: Number, default: 0 },
    sentAt: { type: Number },
    failureCount: { type: Number, default: 0 },
    failureWindowStart: { type: Number, default: null },
    purgeAt: { type: Date },
  },
  OWN_COLLECTION,
);
otpCodeSchema.index({ addressKey: 1, purpose: 1 }, { unique: true });
otpCodeSchema.index({ expiresAt: 1 });
otpCodeSchema.index({ purgeAt: 1 }, TTL);

/** Schema of `otp_sessions`. No TTL: a session lives as long as its tokens (see `cleanup()`). */
export const otpSessionSchema = new mongoose.Schema<OtpSessionDoc>(
  {
    _id: { type: String },
    userId: { type: String },
    amr: { type: [String], default: [] },
    createdAt: { type: Number },
    revokedAt: { type: Number, default: null },
  },
  OWN_COLLECTION,
);
otpSessionSchema.index({ userId: 1 });

/** Schema of `otp_refresh_tokens`. `_id` is the token hash (unique); TTL on `purgeAt`. */
export const otpRefreshTokenSchema = new mongoose.Schema<OtpRefreshTokenDoc>(
  {
    _id: { type: String },
    sessionId: { type: String },
    userId: { type: String },
    parentHash: { type: String, default: null },
    createdAt: { type: Number },
    expiresAt: { type: Number },
    purgeAt: { type: Date },
  },
  OWN_COLLECTION,
);
otpRefreshTokenSchema.index({ sessionId: 1 });
otpRefreshTokenSchema.index({ purgeAt: 1 }, TTL);

/** Schema of `otp_revocations`. `_id` is the key (unique); TTL on `purgeAt`. */
export const otpRevocationSchema = new mongoose.Schema<OtpRevocationDoc>(
  {
    _id: { type: String },
    expiresAt: { type: Number },
    createdAt: { type: Number },
    purgeAt: { type: Date },
  },
  OWN_COLLECTION,
);
otpRevocationSchema.index({ createdAt: 1 });
otpRevocationSchema.index({ purgeAt: 1 }, TTL);

/** Schema of `otp_totp`. `_id` is the user id (one enrolment per user). */
export const otpTotpSchema = new mongoose.Schema<OtpTotpDoc>(
  {
    _id: { type: String },
    encryptedSecret: { type: String },
    keyId: { type: String },
    active: { type: Boolean, default: false },
    lastStep: { type: Number, default: null },
    backupBatch: { type: String, default: null },
    failureCount: { type: Number, default: 0 },
    failureWindowStart: { type: Number, default: null },
    createdAt: { type: Number },
    confirmedAt: { type: Number, default: null },
  },
  OWN_COLLECTION,
);

/** Schema of `otp_backup_codes`. `_id` is the code id. */
export const otpBackupCodeSchema = new mongoose.Schema<OtpBackupCodeDoc>(
  {
    _id: { type: String },
    userId: { type: String },
    batch: { type: String },
    salt: { type: String },
    hash: { type: String },
    usedAt: { type: Number, default: null },
  },
  OWN_COLLECTION,
);
otpBackupCodeSchema.index({ userId: 1, batch: 1 });

/** Schema of `otp_mfa_challenges`. `_id` is the challenge id (unique); TTL on `purgeAt`. */
export const otpMfaChallengeSchema = new mongoose.Schema<OtpMfaChallengeDoc>(
  {
    _id: { type: String },
    userId: { type: String },
    amr: { type: [String], default: [] },
    attempts: { type: Number, default: 0 },
    expiresAt: { type: Number },
    consumedAt: { type: Number, default: null },
    purgeAt: { type: Date },
  },
  OWN_COLLECTION,
);
otpMfaChallengeSchema.index({ purgeAt: 1 }, TTL);

/** The module's schemas by collection. */
export const otpAuthSchemas = {
  codes: otpCodeSchema,
  sessions: otpSessionSchema,
  refreshTokens: otpRefreshTokenSchema,
  revocations: otpRevocationSchema,
  totp: otpTotpSchema,
  backupCodes: otpBackupCodeSchema,
  mfaChallenges: otpMfaChallengeSchema,
} as const;

// ---- the application's users -------------------------------------------------------------

/** What the module needs of a user document; the application adds its own fields. */
export interface OtpUserFields {
  /** Unique, stored exactly as the module passes it (already normalised): no lowercase/trim here. */
  email: string;
  isVerified: boolean;
}

/** {@link OtpUserFields} with the timestamps the helpers switch on. */
export interface OtpUser extends OtpUserFields {
  createdAt?: Date;
  updatedAt?: Date;
}

/**
 * The user fields the module relies on. `email` is unique and deliberately has no `lowercase` or
 * `trim`: the module normalises addresses itself and looks them up by exact match, so a setter
 * that changed the stored value would make a user unfindable.
 */
export const otpUserSchemaDefinition = {
  email: { type: String, required: true, unique: true, maxlength: 254 },
  isVerified: { type: Boolean, required: true, default: false },
} as const satisfies SchemaDefinition;

/** A fresh copy of {@link otpUserSchemaDefinition}, so no schema shares option objects with another. */
function otpUserFields(): SchemaDefinition {
  return { email: { ...otpUserSchemaDefinition.email }, isVerified: { ...otpUserSchemaDefinition.isVerified } };
}

/**
 * A user schema with the module's fields, your `extraFields` and `timestamps`. Extra fields need a
 * default or must be optional, because the module creates users from an address alone. The
 * module's `email` and `isVerified` take precedence over same-named extra fields. For other
 * schema options, build the schema yourself and pass it to {@link withOtpUserFields}.
 *
 * ```ts
 * export interface User extends OtpUser { displayName?: string | null }
 * export const UserSchema = createOtpUserSchema<User>({ displayName: { type: String, default: null } });
 * const UserModel = connection.model<User>('User', UserSchema);
 * ```
 */
export function createOtpUserSchema<TUser extends OtpUserFields = OtpUser>(
  extraFields: SchemaDefinition = {},
): Schema<TUser> {
  const definition = { ...extraFields, ...otpUserFields() } as SchemaDefinition<TUser>;
  return new mongoose.Schema<TUser>(definition, { timestamps: true });
}

/**
 * Adds the module's user fields to an existing schema (e.g. one from `@nestjs/mongoose`'s
 * `SchemaFactory.createForClass(User)`), replacing any `email`/`isVerified` it declared so the
 * unique index and the default are right, and switches `timestamps` on if the schema has none.
 * Returns the same schema.
 */
export function withOtpUserFields<TSchema extends Schema>(schema: TSchema): TSchema {
  schema.add(otpUserFields());
  if (!schema.get('timestamps')) schema.set('timestamps', true);
  return schema;
}
