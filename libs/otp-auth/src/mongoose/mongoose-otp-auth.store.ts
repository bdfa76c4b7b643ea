import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import mongoose, {
  type Connection,
  type HydratedDocument,
  type Model,
  type QueryFilter,
  type Schema,
  type mongo,
} from 'mongoose';
import { someCause } from '../store/store-unavailable.js';
import type { CleanupPolicy, CleanupReport, OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type {
  BackupCodeRecord,
  MfaChallengeRecord,
  TotpAttemptLimits,
  TotpRecord,
} from '../store/totp-store.interface.js';
import {
  OTP_AUTH_COLLECTIONS,
  otpAuthSchemas,
  type OtpAuthCollection,
  type OtpBackupCodeDoc,
  type OtpCodeDoc,
  type OtpMfaChallengeDoc,
  type OtpRefreshTokenDoc,
  type OtpRevocationDoc,
  type OtpSessionDoc,
  type OtpTotpDoc,
  type OtpUser,
  type OtpUserFields,
} from './schemas.js';
import { isUserIdKind, parseUserId, userIdToString, type UserIdKind } from './user-id.js';
import { OtpAuthConfigurationError } from '../errors.js';
import { type StoredUser } from '../store/user-store.interface.js';
import { type AttemptLimits, type CodeRecord, type NewCode } from '../store/code-store.interface.js';
import {
  type RefreshTokenRecord,
  type RefreshTokenWithSession,
  type RevocationRecord,
  type SessionRecord,
} from '../store/session-store.interface.js';

/** Settings of {@link MongooseOtpAuthStore}. */
export interface MongooseOtpAuthStoreOptions<TUser extends OtpUserFields = OtpUser> {
  /**
   * The connection the module's collections live on, e.g. `@nestjs/mongoose`'s
   * `getConnectionToken()` injected into `OtpAuthModule.forRootAsync({ inject, useFactory })`.
   */
  connection: Connection;
  /**
   * The application's user model (`getModelToken(User.name)`); its schema needs the fields of
   * `createOtpUserSchema()` / `withOtpUserFields()`. It may live on another connection.
   */
  userModel: Model<TUser>;
  /** Prefix of the module's collection names (default `otp_`: `otp_codes`, `otp_sessions`, ...). */
  collectionPrefix?: string;
  /**
   * Build the indexes in `init()` (default true): the unique and TTL indexes of the module's
   * collections and the unique `email` index of the users. With false, `init()` only checks that
   * the unique indexes the rules rely on exist (build them in a migration) and fails otherwise.
   */
  autoIndex?: boolean;
  /**
   * How long a login-code document outlives its code, its last send and its last counted guess
   * before MongoDB's TTL monitor may delete it (default 86 400 s). Must be at least
   * `max(resendCooldown, addressFailureLimit.window)`, or the TTL would forget a cooldown or an
   * address-wide failure window early; `cleanup()` applies the module's own retention either way.
   */
  codeRetentionSeconds?: number;
}

/** Default {@link MongooseOtpAuthStoreOptions.collectionPrefix}. */
export const DEFAULT_OTP_COLLECTION_PREFIX = 'otp_';

/** Default {@link MongooseOtpAuthStoreOptions.codeRetentionSeconds}: one day. */
export const DEFAULT_CODE_RETENTION_SECONDS = 86_400;

/** Sessions younger than this are never removed as orphans (their first token may be in flight). */
const ORPHAN_SESSION_AGE_MS = 60_000;

/** How often `savePendingTotp` retries when the document changed between its two steps. */
const PENDING_TOTP_TRIES = 3;

/** Ids per query when `cleanup()` walks sessions or deletes dead backup-code batches. */
const CLEANUP_BATCH = 500;

/** Prefix rule: characters MongoDB allows in collection names, bounded, never `system.`. */
const COLLECTION_PREFIX = /^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,39})?$/;

/**
 * When MongoDB's TTL monitor may delete a document that expires at `expiresAt`: an hour later, so
 * its deletion (by the database server's clock) never runs ahead of the module's own clock.
 */
const TTL_MARGIN_MS = 3600_000;

function purgeDate(expiresAt: number): Date {
  return new Date(expiresAt + TTL_MARGIN_MS);
}

/** Whether a duplicate-key error came from the unique email index. */
function isEmailKey(error: unknown): boolean {
  const { keyPattern, keyValue } = error as {
    keyPattern?: Record<string, unknown>;
    keyValue?: Record<string, unknown>;
  };
  // Older servers may leave both out: then the email index is the only unique one we know of.
  if (!keyPattern && !keyValue) return true;
  return Boolean(keyPattern?.['email'] !== undefined || keyValue?.['email'] !== undefined);
}

/** True for MongoDB's duplicate-key error (E11000), however the driver or Mongoose wrapped it. */
export function isDuplicateKeyError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  return error.code === 11000 || error.code === 11001;
}

/** True for Mongoose's CastError: a value that cannot be the path's type (never a 500 here). */
function isCastError(error: unknown): boolean {
  return error instanceof mongoose.Error.CastError || (error instanceof Error && error.name === 'CastError');
}

/** MongoDB's "collection does not exist" when listing indexes. */
function isNamespaceNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 26;
}

/** Lower-case hex SHA-256 of the exact address (as in the TypeORM store). */
function addressKey(email: string): string {
  return createHash('sha256').update(email).digest('hex');
}

/** Rows a conditional write touched; refuses unacknowledged writes, whose counts mean nothing. */
function matched(result: { acknowledged: boolean; matchedCount: number }): number {
  if (!result.acknowledged) {
    throw new OtpAuthConfigurationError('MongooseOtpAuthStore needs acknowledged writes (write concern w >= 1).');
  }
  return result.matchedCount;
}

function deleted(result: { acknowledged: boolean; deletedCount: number }): number {
  if (!result.acknowledged) {
    throw new OtpAuthConfigurationError('MongooseOtpAuthStore needs acknowledged writes (write concern w >= 1).');
  }
  return result.deletedCount;
}

function toCode(doc: OtpCodeDoc, email: string): CodeRecord {
  return {
    email,
    purpose: doc.purpose,
    codeHash: doc.codeHash ?? null,
    generation: doc.generation,
    expiresAt: doc.expiresAt,
    attempts: doc.attempts,
    sentAt: doc.sentAt,
    failureCount: doc.failureCount,
    failureWindowStart: doc.failureWindowStart ?? null,
  };
}

function toSession(doc: OtpSessionDoc): SessionRecord {
  return {
    id: doc._id,
    userId: doc.userId,
    amr: [...doc.amr],
    createdAt: doc.createdAt,
    revokedAt: doc.revokedAt ?? null,
  };
}

function toRefreshToken(doc: OtpRefreshTokenDoc): RefreshTokenRecord {
  return {
    tokenHash: doc._id,
    sessionId: doc.sessionId,
    userId: doc.userId,
    parentHash: doc.parentHash ?? null,
    createdAt: doc.createdAt,
    expiresAt: doc.expiresAt,
  };
}

function toTotp(doc: OtpTotpDoc): TotpRecord {
  return {
    userId: doc._id,
    encryptedSecret: doc.encryptedSecret,
    keyId: doc.keyId,
    active: doc.active === true,
    lastStep: doc.lastStep ?? null,
    backupBatch: doc.backupBatch ?? null,
    failureCount: doc.failureCount,
    failureWindowStart: doc.failureWindowStart ?? null,
    createdAt: doc.createdAt,
    confirmedAt: doc.confirmedAt ?? null,
  };
}

function toBackupCode(doc: OtpBackupCodeDoc): BackupCodeRecord {
  return {
    id: doc._id,
    userId: doc.userId,
    batch: doc.batch,
    salt: doc.salt,
    hash: doc.hash,
    usedAt: doc.usedAt ?? null,
  };
}

function toMfaChallenge(doc: OtpMfaChallengeDoc): MfaChallengeRecord {
  return {
    id: doc._id,
    userId: doc.userId,
    amr: [...doc.amr],
    attempts: doc.attempts,
    expiresAt: doc.expiresAt,
    consumedAt: doc.consumedAt ?? null,
  };
}

/**
 * An aggregation expression: true when the failure window starting at `$failureWindowStart` is
 * over at `cutoff` (or none was started), i.e. the guess being reserved opens a new window.
 */
function windowOver(cutoff: number): Record<string, unknown> {
  return {
    $or: [{ $eq: [{ $ifNull: ['$failureWindowStart', null] }, null] }, { $lte: ['$failureWindowStart', cutoff] }],
  };
}

/** The MongoDB driver's and Mongoose's errors for an unreachable, lost or closing server. */
const MONGO_UNAVAILABLE_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  // Extends MongoNetworkError but reports its own name.
  'PoolClearedOnNetworkError',
  'MongoPoolClosedError',
  'MongoWaitQueueTimeoutError',
  'MongoClientClosedError',
  'MongoOperationTimeoutError',
]);
/**
 * Server answers during a failover or shutdown that the driver's retry did not absorb (a
 * standalone server has no retryable writes): ShutdownInProgress, PrimarySteppedDown,
 * NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
 * NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary.
 */
const MONGO_UNAVAILABLE_CODES = new Set([91, 189, 10107, 11600, 11602, 13435, 13436]);
/**
 * Mongoose's own errors before a connection exists: "buffering timed out" (a plain
 * MongooseError), and "before initial connection is complete" with `bufferCommands: false`.
 */
const MONGOOSE_NOT_CONNECTED = /buffering timed out|before initial connection is complete/;

/** Whether a Mongoose or driver error means MongoDB cannot be reached right now. */
export function isMongoUnavailable(error: unknown): boolean {
  return someCause(
    error,
    (e) =>
      (typeof e['name'] === 'string' && MONGO_UNAVAILABLE_NAMES.has(e['name'])) ||
      (typeof e['code'] === 'number' &&
        (e['name'] === 'MongoServerError' || e['name'] === 'MongoWriteConcernError') &&
        MONGO_UNAVAILABLE_CODES.has(e['code'])) ||
      (typeof e['message'] === 'string' && MONGOOSE_NOT_CONNECTED.test(e['message'])),
  );
}

/**
 * Where Mongoose would take `sanitizeFilter` from for a query on this connection, in its order:
 * the connection (`createConnection(uri, { sanitizeFilter })` or `connection.set()`), then the
 * global `mongoose.set()`.
 */
function sanitizeFilterSource(connection: Connection): string | undefined {
  // A connection's own setting, true or false, overrides the global one.
  const own: unknown = connection.get?.('sanitizeFilter');
  if (own !== undefined && own !== null) return own ? 'the connection options' : undefined;
  if (connection.base?.get?.('sanitizeFilter')) return 'mongoose.set()';
  return undefined;
}

function refuseSanitizeFilter(connection: Connection): void {
  const source = sanitizeFilterSource(connection);
  if (source === undefined) return;
  // The store's range conditions ($lt, $gt, $or) are built here, never from input; sanitizeFilter
  // would rewrite them into $eq matches that fail to cast (500s at sign-in).
  throw new OtpAuthConfigurationError(
    `MongooseOtpAuthStore cannot share a connection that has sanitizeFilter on (set through ${source}): it would ` +
      "rewrite the store's own range conditions. Give the store a connection without it (with @nestjs/mongoose, a " +
      'second `MongooseModule.forRoot(uri, { connectionName })`), or pass `{ sanitizeFilter: true }` to your own ' +
      'queries that take input instead.',
  );
}

/** The write concern a model's writes get: its schema's, else its connection's client's. */
function writeConcernOf(model: Model<unknown>): { w?: unknown } | undefined {
  const schemaLevel = model.schema.get('writeConcern') as { w?: unknown } | undefined;
  if (schemaLevel?.w !== undefined) return schemaLevel;
  return model.db.db?.writeConcern ?? model.db.getClient?.()?.options?.writeConcern;
}

/**
 * The store on MongoDB through Mongoose. Every rule is one single-document atomic write: a
 * conditional `updateOne`/`findOneAndUpdate` whose filter carries the rule, or an insert against
 * a unique index (duplicate key = someone else won). No multi-document transactions, so a
 * standalone server works; where the TypeORM store relies on one statement spanning two tables,
 * the method documents the ordering that keeps the rule.
 *
 * ```ts
 * OtpAuthModule.forRootAsync({
 *   imports: [MongooseModule.forFeature([{ name: User.name, schema: UserSchema }])],
 *   inject: [getConnectionToken(), getModelToken(User.name)],
 *   useFactory: (connection: Connection, userModel: Model<User>) => ({
 *     secret: process.env.OTP_AUTH_SECRET!,
 *     store: new MongooseOtpAuthStore({ connection, userModel }),
 *   }),
 * });
 * ```
 *
 * Global plugins (`mongoose.plugin(fn)`) reach the module's schemas too, as they reach every
 * schema compiled after them; register one that changes queries or documents (soft delete, tenant
 * scoping, timestamps) with `tags`, which the module's schemas never match.
 *
 * TTL indexes let MongoDB delete expired codes, refresh tokens, revocations and MFA challenges on
 * its own, by the server's clock; this assumes the module's `clock` is real time (the default).
 * With a clock far in the past (tests), build indexes yourself without TTL (`autoIndex: false`).
 */
export class MongooseOtpAuthStore<TUser extends OtpUserFields = OtpUser> implements OtpAuthStore<
  HydratedDocument<TUser>
> {
  /** The collection name of each of the module's collections (prefix applied). */
  readonly collectionNames: Readonly<Record<OtpAuthCollection, string>>;

  private readonly logger = new Logger('OtpAuth');
  private readonly connection: Connection;
  private retentionWarned = false;
  private readonly users: Model<TUser>;
  private readonly userIdKind: UserIdKind;
  private readonly autoIndex: boolean;
  private readonly codeRetentionMs: number;
  private readonly codes: Model<OtpCodeDoc>;
  private readonly sessions: Model<OtpSessionDoc>;
  private readonly tokens: Model<OtpRefreshTokenDoc>;
  private readonly revocations: Model<OtpRevocationDoc>;
  private readonly totp: Model<OtpTotpDoc>;
  private readonly backupCodes: Model<OtpBackupCodeDoc>;
  private readonly mfaChallenges: Model<OtpMfaChallengeDoc>;

  /** Validates the options and compiles the module's models on `connection` (no I/O). */
  constructor(options: MongooseOtpAuthStoreOptions<TUser>) {
    if (typeof options !== 'object' || options === null) {
      throw new OtpAuthConfigurationError('MongooseOtpAuthStore needs `{ connection, userModel }`.');
    }
    const { connection, userModel } = options;
    if (typeof connection !== 'object' || connection === null || typeof connection.model !== 'function') {
      throw new OtpAuthConfigurationError(
        'MongooseOtpAuthStore: `connection` must be a Mongoose Connection (e.g. inject `getConnectionToken()`).',
      );
    }
    if (typeof userModel !== 'function' || typeof userModel.schema?.path !== 'function') {
      throw new OtpAuthConfigurationError(
        'MongooseOtpAuthStore: `userModel` must be a Mongoose model (e.g. inject `getModelToken(User.name)`).',
      );
    }
    this.users = userModel;
    this.userIdKind = MongooseOtpAuthStore.checkUserSchema(userModel.schema);

    const prefix = options.collectionPrefix ?? DEFAULT_OTP_COLLECTION_PREFIX;
    if (typeof prefix !== 'string' || !COLLECTION_PREFIX.test(prefix) || prefix.startsWith('system.')) {
      throw new OtpAuthConfigurationError(
        'MongooseOtpAuthStore: `collectionPrefix` must be up to 40 of A-Z a-z 0-9 _ . - and not start with `system.`.',
      );
    }
    const autoIndex = options.autoIndex ?? true;
    if (typeof autoIndex !== 'boolean') {
      throw new OtpAuthConfigurationError('MongooseOtpAuthStore: `autoIndex` must be a boolean.');
    }
    this.autoIndex = autoIndex;
    const retention = options.codeRetentionSeconds ?? DEFAULT_CODE_RETENTION_SECONDS;
    if (!Number.isInteger(retention) || retention < 60 || retention > 366 * 86_400) {
      throw new OtpAuthConfigurationError(
        `MongooseOtpAuthStore: \`codeRetentionSeconds\` must be an integer from 60 to ${366 * 86_400} (got ${String(retention)}).`,
      );
    }
    this.codeRetentionMs = retention * 1000;

    const names = {} as Record<OtpAuthCollection, string>;
    for (const key of Object.keys(OTP_AUTH_COLLECTIONS) as OtpAuthCollection[]) {
      names[key] = `${prefix}${OTP_AUTH_COLLECTIONS[key]}`;
    }
    this.collectionNames = Object.freeze(names);
    // Passing the collection name compiles a model for this store even if the name is taken,
    // so two stores with different prefixes can share a connection. Each store compiles clones:
    // Mongoose applies global plugins to a schema once, at its first compile, so a shared schema
    // would carry one Mongoose instance's plugins to another.
    const compile = <T>(key: OtpAuthCollection, schema: Schema<T>): Model<T> =>
      connection.model<T>(`OtpAuth:${names[key]}`, schema.clone(), names[key]);
    this.codes = compile('codes', otpAuthSchemas.codes);
    this.sessions = compile('sessions', otpAuthSchemas.sessions);
    this.tokens = compile('refreshTokens', otpAuthSchemas.refreshTokens);
    this.revocations = compile('revocations', otpAuthSchemas.revocations);
    this.totp = compile('totp', otpAuthSchemas.totp);
    this.backupCodes = compile('backupCodes', otpAuthSchemas.backupCodes);
    this.mfaChallenges = compile('mfaChallenges', otpAuthSchemas.mfaChallenges);
    refuseSanitizeFilter(connection);
    this.connection = connection;
  }

  /** See {@link isMongoUnavailable}. */
  isUnavailableError(error: unknown): boolean {
    return isMongoUnavailable(error);
  }

  /**
   * Builds the indexes (`autoIndex`, the default) or checks the unique ones exist. Uses
   * `Model.createIndexes()`, not `syncIndexes()`: it only ever adds what the schema declares, so it
   * never drops an index an operator added, and two app versions starting side by side during a
   * rolling deploy cannot drop each other's indexes. A changed index definition fails here with
   * MongoDB's conflict error instead of being rebuilt silently.
   */
  async init(): Promise<void> {
    // The connection may have been opened (and configured) after the constructor ran.
    refuseSanitizeFilter(this.connection);
    // With w: 0 an insert reports success without the server's answer: a duplicate key (someone
    // else won the refresh, the code, the backup code) would pass unseen.
    for (const model of [this.codes, this.users] as Model<unknown>[]) {
      if (writeConcernOf(model)?.w === 0) {
        throw new OtpAuthConfigurationError(
          `MongooseOtpAuthStore needs acknowledged writes, but \`${model.collection.collectionName}\` is written ` +
            'with w: 0. Remove `w=0` from the connection string, connection options or the schema.',
        );
      }
    }
    const own = [
      this.codes,
      this.sessions,
      this.tokens,
      this.revocations,
      this.totp,
      this.backupCodes,
      this.mfaChallenges,
    ] as Model<unknown>[];
    if (this.autoIndex) {
      for (const model of own) {
        try {
          await model.createIndexes();
        } catch (error) {
          if (isMongoUnavailable(error)) throw error;
          throw new OtpAuthConfigurationError(
            `could not build the indexes of \`${model.collection.collectionName}\`: ${(error as Error).message}`,
            { cause: error },
          );
        }
      }
      if (!(await this.hasUniqueIndex(this.users.collection, { email: 1 }))) {
        try {
          await this.users.collection.createIndex({ email: 1 }, { unique: true });
        } catch (error) {
          if (isMongoUnavailable(error)) throw error;
          throw new OtpAuthConfigurationError(
            `could not build a unique index on \`${this.users.collection.collectionName}.email\`: ${(error as Error).message}`,
            { cause: error },
          );
        }
      }
      return;
    }
    // Without autoIndex: the exactly-once rules that are not on `_id` need these unique indexes.
    const required: [mongo.Collection, Record<string, 1>][] = [
      [this.codes.collection, { addressKey: 1, purpose: 1 }],
      [this.users.collection, { email: 1 }],
    ];
    for (const [collection, key] of required) {
      if (!(await this.hasUniqueIndex(collection, key))) {
        throw new OtpAuthConfigurationError(
          `\`${collection.collectionName}\` has no unique index on ${JSON.stringify(key)}; build it, or set \`autoIndex: true\`.`,
        );
      }
    }
  }

  // ---- users -------------------------------------------------------------------------------

  async findUserById(id: string): Promise<StoredUser<HydratedDocument<TUser>> | null> {
    const key = parseUserId(id, this.userIdKind);
    if (key === undefined) return null;
    try {
      // Primary, as every read of the store: a user just created or verified must be seen at once.
      const user = await this.users.findOne({ _id: { $eq: key } } as QueryFilter<TUser>).read('primary');
      return user ? this.toUser(user) : null;
    } catch (error) {
      // parseUserId already refused what cannot be cast; this is the belt to its braces.
      if (isCastError(error)) return null;
      throw error;
    }
  }

  async findUserByEmail(email: string): Promise<StoredUser<HydratedDocument<TUser>> | null> {
    if (typeof email !== 'string') return null;
    // Primary: createOrGetUser reads right after its insert.
    const user = await this.users.findOne({ email: { $eq: email } } as QueryFilter<TUser>).read('primary');
    // A collection or index collation can match a different address; only the exact one counts.
    return user && user.email === email ? this.toUser(user) : null;
  }

  async createOrGetUser(
    email: string,
    options: { verified?: boolean } = {},
  ): Promise<StoredUser<HydratedDocument<TUser>> | null> {
    try {
      await this.users.create({ email, isVerified: options.verified === true } as Partial<TUser>);
    } catch (error) {
      // The unique email index: another request (or instance) created it first. A duplicate on
      // another unique field of the app's schema is the app's problem to see, not a lost race.
      if (!isDuplicateKeyError(error) || !isEmailKey(error)) throw error;
    }
    // Null when the unique index holds a different address that its collation deems equal.
    return this.findUserByEmail(email);
  }

  async markUserVerified(id: string): Promise<StoredUser<HydratedDocument<TUser>> | null> {
    const key = parseUserId(id, this.userIdKind);
    if (key === undefined) return null;
    try {
      const user = await this.users.findOneAndUpdate(
        { _id: { $eq: key } } as QueryFilter<TUser>,
        { $set: { isVerified: true } },
        { returnDocument: 'after' },
      );
      return user ? this.toUser(user) : null;
    } catch (error) {
      if (isCastError(error)) return null;
      throw error;
    }
  }

  // ---- codes -------------------------------------------------------------------------------

  async findCode(email: string, purpose: string): Promise<CodeRecord | null> {
    const doc = await this.codes.findOne({ addressKey: addressKey(email), purpose }).lean<OtpCodeDoc>();
    return doc ? toCode(doc, email) : null;
  }

  /**
   * Compare-and-set on `generation`: an insert against the unique (addressKey, purpose) index when
   * there was no document, else one `findOneAndUpdate` whose filter names the expected generation.
   */
  async replaceCode(expected: CodeRecord | null, next: NewCode): Promise<CodeRecord | null> {
    const key = addressKey(next.email);
    const fresh = { codeHash: next.codeHash, expiresAt: next.expiresAt, attempts: 0, sentAt: next.now };
    const purgeAt = new Date(Math.max(next.expiresAt, next.now) + this.codeRetentionMs);
    if (expected === null) {
      const doc: OtpCodeDoc = {
        addressKey: key,
        purpose: next.purpose,
        generation: 1,
        failureCount: 0,
        failureWindowStart: null,
        purgeAt,
        ...fresh,
      };
      try {
        await this.codes.create(doc);
        return toCode(doc, next.email);
      } catch (error) {
        if (isDuplicateKeyError(error)) return null;
        throw error;
      }
    }
    const doc = await this.codes
      .findOneAndUpdate(
        { addressKey: key, purpose: next.purpose, generation: expected.generation },
        // The address-wide failure fields are left alone: a new code does not reset the window.
        { $set: { ...fresh, generation: expected.generation + 1 }, $max: { purgeAt } },
        { returnDocument: 'after' },
      )
      .lean<OtpCodeDoc>();
    return doc ? toCode(doc, next.email) : null;
  }

  async restoreCode(email: string, purpose: string, generation: number, previous: CodeRecord | null): Promise<void> {
    const filter = { addressKey: addressKey(email), purpose, generation };
    if (previous === null) {
      await this.codes.deleteOne(filter);
      return;
    }
    const { codeHash, expiresAt, attempts, sentAt } = previous;
    // `purgeAt` stays: it only ever moves later, so the failure window keeps its retention.
    await this.codes.updateOne(filter, {
      $set: { codeHash, expiresAt, attempts, sentAt, generation: previous.generation },
    });
  }

  /**
   * One `updateOne` with an update pipeline: the filter admits the guess only for a live,
   * unexpired code of this generation under both limits, and the pipeline increments the
   * per-code count and the address-wide count (or starts a new window) from the values it
   * matched, all in one single-document write, like the SQL `CASE` of the TypeORM store.
   */
  async reserveAttempt(email: string, purpose: string, generation: number, limits: AttemptLimits): Promise<boolean> {
    const { now, failureWindowCutoff: cutoff } = limits;
    const over = windowOver(cutoff);
    const result = await this.codes.updateOne(
      {
        addressKey: addressKey(email),
        purpose,
        generation,
        codeHash: { $ne: null },
        expiresAt: { $gt: now },
        attempts: { $lt: limits.maxAttempts },
        $or: [
          { failureWindowStart: null },
          { failureWindowStart: { $lte: cutoff } },
          { failureCount: { $lt: limits.maxFailures } },
        ],
      },
      [
        {
          // Every expression in one $set stage reads the document as matched, so the window
          // start is read before it is reassigned.
          $set: {
            attempts: { $add: ['$attempts', 1] },
            failureCount: { $cond: { if: over, then: 1, else: { $add: ['$failureCount', 1] } } },
            failureWindowStart: { $cond: { if: over, then: now, else: '$failureWindowStart' } },
            // Kept at least as long as the failure window it records (a TTL must not reset it).
            purgeAt: {
              $max: ['$purgeAt', new Date(now + Math.max(this.codeRetentionMs, now - limits.failureWindowCutoff))],
            },
          },
        },
      ],
      { updatePipeline: true },
    );
    return matched(result) === 1;
  }

  async consumeCode(email: string, purpose: string, generation: number): Promise<boolean> {
    // The generation moves on, so a snapshot taken before consumption can never restore the code.
    const result = await this.codes.updateOne(
      { addressKey: addressKey(email), purpose, generation, codeHash: { $ne: null } },
      { $set: { codeHash: null, failureCount: 0, failureWindowStart: null, generation: generation + 1 } },
    );
    return matched(result) === 1;
  }

  // ---- sessions and refresh tokens ---------------------------------------------------------

  /**
   * The token first, then the session, without a transaction (those need a replica set): a
   * connection lost in between leaves a token whose session does not exist, which
   * `findRefreshToken` never returns and the TTL index removes; never a session without its token.
   */
  async createSession(session: SessionRecord, firstToken: RefreshTokenRecord): Promise<void> {
    await this.tokens.create(this.tokenDoc(firstToken));
    await this.sessions.create({
      _id: session.id,
      userId: session.userId,
      amr: [...session.amr],
      createdAt: session.createdAt,
      revokedAt: session.revokedAt,
    } satisfies OtpSessionDoc);
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | null> {
    const token = await this.tokens.findOne({ _id: { $eq: tokenHash } }).lean<OtpRefreshTokenDoc>();
    if (!token) return null;
    const session = await this.sessions.findOne({ _id: { $eq: token.sessionId } }).lean<OtpSessionDoc>();
    if (!session) return null;
    return { token: toRefreshToken(token), session: toSession(session) };
  }

  /** Exactly one insert per successor hash wins: `_id` is the hash, and `_id` is always unique. */
  async insertSuccessor(successor: RefreshTokenRecord): Promise<boolean> {
    try {
      await this.tokens.create(this.tokenDoc(successor));
      return true;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
  }

  async revokeSession(sessionId: string, now: number, revocation: RevocationRecord): Promise<boolean> {
    // The revocation entry goes first: once it exists, every instance refuses the session's tokens.
    await this.addRevocation(revocation);
    const result = await this.sessions.updateOne(
      { _id: { $eq: sessionId }, revokedAt: null },
      { $set: { revokedAt: now } },
    );
    return matched(result) === 1;
  }

  async listActiveSessionIds(userId: string): Promise<string[]> {
    const docs = await this.sessions
      .find({ userId: { $eq: userId }, revokedAt: null }, { _id: 1 })
      .lean<Pick<OtpSessionDoc, '_id'>[]>();
    return docs.map((doc) => doc._id);
  }

  /** Insert against `_id` (the key); a duplicate means the entry exists, which is the goal. */
  async addRevocation(revocation: RevocationRecord): Promise<void> {
    try {
      await this.revocations.create({
        _id: revocation.key,
        expiresAt: revocation.expiresAt,
        createdAt: revocation.createdAt,
        purgeAt: purgeDate(revocation.expiresAt),
      } satisfies OtpRevocationDoc);
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
  }

  async listRevocations(since: number, now: number): Promise<RevocationRecord[]> {
    const docs = await this.revocations
      .find({ createdAt: { $gte: since }, expiresAt: { $gt: now } })
      .lean<OtpRevocationDoc[]>();
    return docs.map((doc) => ({ key: doc._id, expiresAt: doc.expiresAt, createdAt: doc.createdAt }));
  }

  // ---- TOTP enrolment ----------------------------------------------------------------------

  async findTotp(userId: string): Promise<TotpRecord | null> {
    const doc = await this.totp.findOne({ _id: { $eq: userId } }).lean<OtpTotpDoc>();
    return doc && doc._id === userId ? toTotp(doc) : null;
  }

  /**
   * One upsert whose filter is "this user's enrolment, pending": it replaces a pending one in
   * place (keeping the user-wide failure window), inserts when there is none, and hits the `_id`
   * index (duplicate key) when the enrolment is active, which changes nothing. A duplicate can
   * also come from a concurrent insert; the document is then read to tell the two apart.
   */
  async savePendingTotp(record: TotpRecord): Promise<boolean> {
    const { userId } = record;
    for (let i = 0; i < PENDING_TOTP_TRIES; i++) {
      try {
        await this.totp.updateOne(
          // Plain equalities (no operators): an upsert builds the new document from them.
          { _id: String(userId), active: false },
          {
            $set: {
              encryptedSecret: record.encryptedSecret,
              keyId: record.keyId,
              lastStep: record.lastStep,
              backupBatch: record.backupBatch,
              createdAt: record.createdAt,
              confirmedAt: record.confirmedAt,
            },
            // `_id` and `active: false` come from the filter's equalities on insert.
            $setOnInsert: { failureCount: record.failureCount, failureWindowStart: record.failureWindowStart },
          },
          { upsert: true },
        );
        return true;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
      const current = await this.totp
        .findOne({ _id: { $eq: userId } }, { active: 1 })
        .lean<Pick<OtpTotpDoc, 'active'>>();
      if (current?.active) return false;
      // A concurrent request inserted (or deleted) it in between: try again.
    }
    return false;
  }

  async activateTotp(
    userId: string,
    encryptedSecret: string,
    lastStep: number,
    backupBatch: string,
    now: number,
  ): Promise<boolean> {
    const result = await this.totp.updateOne(
      { _id: { $eq: userId }, active: false, encryptedSecret: { $eq: encryptedSecret } },
      { $set: { active: true, lastStep, backupBatch, confirmedAt: now, failureCount: 0, failureWindowStart: null } },
    );
    return matched(result) === 1;
  }

  /**
   * Deletes the enrolment, then the user's backup codes of batches that are not current (see
   * {@link removeDeadBackupCodes}); codes of an enrolment a concurrent request made meanwhile survive.
   */
  async deleteTotp(userId: string): Promise<boolean> {
    const result = await this.totp.deleteOne({ _id: { $eq: userId } });
    await this.removeDeadBackupCodes({ userId: { $eq: userId } });
    return deleted(result) === 1;
  }

  async acceptTotpStep(userId: string, step: number, encryptedSecret: string): Promise<boolean> {
    const result = await this.totp.updateOne(
      {
        _id: { $eq: userId },
        active: true,
        encryptedSecret: { $eq: encryptedSecret },
        $or: [{ lastStep: null }, { lastStep: { $lt: step } }],
      },
      { $set: { lastStep: step, failureCount: 0, failureWindowStart: null } },
    );
    return matched(result) === 1;
  }

  /** Same single-statement pipeline as {@link reserveAttempt}, on the user-wide window. */
  async reserveTotpAttempt(userId: string, limits: TotpAttemptLimits): Promise<boolean> {
    const { now, failureWindowCutoff: cutoff } = limits;
    const over = windowOver(cutoff);
    const result = await this.totp.updateOne(
      {
        _id: { $eq: userId },
        $or: [
          { failureWindowStart: null },
          { failureWindowStart: { $lte: cutoff } },
          { failureCount: { $lt: limits.maxFailures } },
        ],
      },
      [
        {
          $set: {
            failureCount: { $cond: { if: over, then: 1, else: { $add: ['$failureCount', 1] } } },
            failureWindowStart: { $cond: { if: over, then: now, else: '$failureWindowStart' } },
          },
        },
      ],
      { updatePipeline: true },
    );
    return matched(result) === 1;
  }

  async clearTotpFailures(userId: string): Promise<void> {
    await this.totp.updateOne({ _id: { $eq: userId } }, { $set: { failureCount: 0, failureWindowStart: null } });
  }

  // ---- backup codes ------------------------------------------------------------------------

  async insertBackupCodes(codes: readonly BackupCodeRecord[]): Promise<void> {
    if (codes.length === 0) return;
    await this.backupCodes.insertMany(
      codes.map((code): OtpBackupCodeDoc => ({
        _id: code.id,
        userId: code.userId,
        batch: code.batch,
        salt: code.salt,
        hash: code.hash,
        usedAt: code.usedAt,
      })),
      { ordered: true },
    );
  }

  async setBackupBatch(userId: string, batch: string): Promise<boolean> {
    const result = await this.totp.updateOne({ _id: { $eq: userId }, active: true }, { $set: { backupBatch: batch } });
    return matched(result) === 1;
  }

  async listUsableBackupCodes(userId: string): Promise<BackupCodeRecord[]> {
    const enrolment = await this.totp
      .findOne({ _id: { $eq: userId }, active: true }, { backupBatch: 1 })
      .lean<Pick<OtpTotpDoc, '_id' | 'backupBatch'>>();
    if (!enrolment?.backupBatch || enrolment._id !== userId) return [];
    const docs = await this.backupCodes
      .find({ userId: { $eq: userId }, batch: enrolment.backupBatch, usedAt: null })
      .sort({ _id: 1 })
      .lean<OtpBackupCodeDoc[]>();
    return docs.filter((doc) => doc.userId === userId).map(toBackupCode);
  }

  /**
   * Marks the code used only while it is unused and its batch is the valid one. MongoDB cannot
   * check the batch (another collection) in the same write, so: check, claim, check again.
   * The claim (`usedAt: null` -> now) is exactly-once. A batch never becomes current again once
   * replaced (batches are fresh random ids), so if it is current after the claim it was current
   * at the claim: the claim is where the use takes effect, as the TypeORM statement's would. If
   * it was replaced in between, the answer is false and the code stays spent (its batch is dead).
   */
  async useBackupCode(id: string, now: number): Promise<boolean> {
    const code = await this.backupCodes
      .findOne({ _id: { $eq: id }, usedAt: null }, { userId: 1, batch: 1 })
      .lean<Pick<OtpBackupCodeDoc, '_id' | 'userId' | 'batch'>>();
    // The first check only spares codes of dead batches from being marked used.
    if (!code || !(await this.isCurrentBatch(code.userId, code.batch))) return false;
    const claim = await this.backupCodes.updateOne({ _id: { $eq: id }, usedAt: null }, { $set: { usedAt: now } });
    if (matched(claim) !== 1) return false;
    return this.isCurrentBatch(code.userId, code.batch);
  }

  // ---- MFA challenges ----------------------------------------------------------------------

  async createMfaChallenge(challenge: MfaChallengeRecord): Promise<void> {
    await this.mfaChallenges.create({
      _id: challenge.id,
      userId: challenge.userId,
      amr: [...challenge.amr],
      attempts: challenge.attempts,
      expiresAt: challenge.expiresAt,
      consumedAt: challenge.consumedAt,
      purgeAt: purgeDate(challenge.expiresAt),
    } satisfies OtpMfaChallengeDoc);
  }

  async findMfaChallenge(id: string): Promise<MfaChallengeRecord | null> {
    const doc = await this.mfaChallenges.findOne({ _id: { $eq: id } }).lean<OtpMfaChallengeDoc>();
    return doc && doc._id === id ? toMfaChallenge(doc) : null;
  }

  async reserveMfaAttempt(id: string, maxAttempts: number, now: number): Promise<boolean> {
    const result = await this.mfaChallenges.updateOne(
      { _id: { $eq: id }, consumedAt: null, expiresAt: { $gt: now }, attempts: { $lt: maxAttempts } },
      { $inc: { attempts: 1 } },
    );
    return matched(result) === 1;
  }

  async consumeMfaChallenge(id: string, now: number): Promise<boolean> {
    const result = await this.mfaChallenges.updateOne(
      { _id: { $eq: id }, consumedAt: null, expiresAt: { $gt: now } },
      { $set: { consumedAt: now } },
    );
    return matched(result) === 1;
  }

  // ---- maintenance -------------------------------------------------------------------------

  /**
   * Removes what the TypeORM store's `cleanup()` removes, by the caller's clock, and counts it.
   * Documents the TTL monitor already deleted are not counted (they are gone either way).
   */
  async cleanup(policy: CleanupPolicy): Promise<CleanupReport> {
    const { now } = policy;
    const retained = now - policy.codeRetention;
    if (policy.codeRetention > this.codeRetentionMs && !this.retentionWarned) {
      // The TTL index would forget cooldowns and failure windows before the module does.
      this.retentionWarned = true;
      this.logger.warn(
        `MongooseOtpAuthStore: codeRetentionSeconds (${this.codeRetentionMs / 1000}) is shorter than the module's code retention (${policy.codeRetention / 1000} s); raise it.`,
      );
    }
    const codes = deleted(
      await this.codes.deleteMany({
        expiresAt: { $lte: now },
        sentAt: { $lte: retained },
        $or: [{ failureWindowStart: null }, { failureWindowStart: { $lte: retained } }],
      }),
    );
    // By the module's clock, as the SQL store does; the TTL index only sweeps, later.
    const expired = { expiresAt: { $lte: now } };
    const refreshTokens = deleted(await this.tokens.deleteMany(expired));
    const sessions = await this.removeOrphanSessions(now - ORPHAN_SESSION_AGE_MS);
    const revocations = deleted(await this.revocations.deleteMany(expired));
    // Consumed challenges stay until they expire: the document is what makes them single-use.
    const challenges = deleted(await this.mfaChallenges.deleteMany(expired));
    const usedBackupCodes = deleted(await this.backupCodes.deleteMany({ usedAt: { $ne: null } }));
    const deadBackupCodes = await this.removeDeadBackupCodes({});
    const report = {
      codes,
      refreshTokens,
      sessions,
      revocations,
      mfa: challenges + usedBackupCodes + deadBackupCodes,
    };
    return {
      ...report,
      total: report.codes + report.refreshTokens + report.sessions + report.revocations + report.mfa,
    };
  }

  // ---- helpers -----------------------------------------------------------------------------

  /**
   * Deletes sessions created before `cutoff` that have no refresh token left. Walks sessions in
   * `_id` order, asks the tokens collection which of each page still have tokens, and deletes
   * the rest. No token can be added to such a session meanwhile: a successor is only inserted
   * for a token that was found, and the first token is written before its session.
   */
  private async removeOrphanSessions(cutoff: number): Promise<number> {
    let removed = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.sessions
        .find({ createdAt: { $lte: cutoff }, ...(after === undefined ? {} : { _id: { $gt: after } }) }, { _id: 1 })
        .sort({ _id: 1 })
        .limit(CLEANUP_BATCH)
        .lean<Pick<OtpSessionDoc, '_id'>[]>();
      if (page.length === 0) return removed;
      const ids = page.map((doc) => doc._id);
      after = ids[ids.length - 1];
      const alive = new Set(await this.tokens.distinct('sessionId', { sessionId: { $in: ids } }));
      const orphans = ids.filter((id) => !alive.has(id));
      if (orphans.length > 0) {
        removed += deleted(await this.sessions.deleteMany({ _id: { $in: orphans }, createdAt: { $lte: cutoff } }));
      }
      if (page.length < CLEANUP_BATCH) return removed;
    }
  }

  /**
   * Deletes backup codes (among `match`) whose batch is not their user's current one. Reads the
   * (user, batch) pairs that have codes first, then each user's current batch. Codes are inserted
   * only after their batch became current, and a replaced batch never comes back, so a pair seen
   * with codes whose batch is not current when read afterwards is dead for good; a batch made
   * current meanwhile has either no codes yet (not seen) or is current when read (kept).
   */
  private async removeDeadBackupCodes(match: QueryFilter<OtpBackupCodeDoc>): Promise<number> {
    const pairs = await this.backupCodes.aggregate<{ _id: { userId: string; batch: string } }>([
      { $match: match },
      { $group: { _id: { userId: '$userId', batch: '$batch' } } },
    ]);
    if (pairs.length === 0) return 0;
    const userIds = [...new Set(pairs.map((pair) => pair._id.userId))];
    const current = new Map<string, string | null>();
    for (let i = 0; i < userIds.length; i += CLEANUP_BATCH) {
      const enrolments = await this.totp
        .find({ _id: { $in: userIds.slice(i, i + CLEANUP_BATCH) } }, { backupBatch: 1 })
        .lean<Pick<OtpTotpDoc, '_id' | 'backupBatch'>[]>();
      for (const enrolment of enrolments) current.set(enrolment._id, enrolment.backupBatch ?? null);
    }
    const dead = pairs
      .filter((pair) => current.get(pair._id.userId) !== pair._id.batch)
      .map((pair) => ({ userId: pair._id.userId, batch: pair._id.batch }));
    let removed = 0;
    for (let i = 0; i < dead.length; i += CLEANUP_BATCH) {
      removed += deleted(await this.backupCodes.deleteMany({ $or: dead.slice(i, i + CLEANUP_BATCH) }));
    }
    return removed;
  }

  /** True while `batch` is the valid backup set of the user's active enrolment. */
  private async isCurrentBatch(userId: string, batch: string): Promise<boolean> {
    return (await this.totp.exists({ _id: { $eq: userId }, active: true, backupBatch: { $eq: batch } })) !== null;
  }

  private tokenDoc(token: RefreshTokenRecord): OtpRefreshTokenDoc {
    return {
      _id: token.tokenHash,
      sessionId: token.sessionId,
      userId: token.userId,
      parentHash: token.parentHash,
      createdAt: token.createdAt,
      expiresAt: token.expiresAt,
      purgeAt: purgeDate(token.expiresAt),
    };
  }

  /** True when the collection has a unique index on exactly `key` that applies to every document. */
  private async hasUniqueIndex(collection: mongo.Collection, key: Record<string, 1>): Promise<boolean> {
    let indexes: mongo.IndexDescriptionInfo[];
    try {
      indexes = await collection.indexes();
    } catch (error) {
      if (isNamespaceNotFound(error)) return false;
      throw error;
    }
    const wanted = Object.keys(key);
    return indexes.some((index) => {
      const fields = Object.keys(index.key);
      return (
        index.unique === true &&
        index.partialFilterExpression === undefined &&
        fields.length === wanted.length &&
        fields.every((field, i) => field === wanted[i] && Math.abs(Number(index.key[field])) === 1)
      );
    });
  }

  /** The user schema has what the module needs, and an `_id` the module can use as a string. */
  private static checkUserSchema(schema: Schema): UserIdKind {
    const path = (name: string): { instance: string; options: Record<string, unknown> } | undefined =>
      schema.path(name) as { instance: string; options: Record<string, unknown> } | undefined;
    for (const [name, instance] of [
      ['email', 'String'],
      ['isVerified', 'Boolean'],
    ] as const) {
      if (path(name)?.instance !== instance) {
        throw new OtpAuthConfigurationError(
          `MongooseOtpAuthStore: the user schema needs a ${instance} \`${name}\`; build it with createOtpUserSchema() or withOtpUserFields().`,
        );
      }
    }
    const id = path('_id');
    if (!id || !isUserIdKind(id.instance)) {
      throw new OtpAuthConfigurationError(
        `MongooseOtpAuthStore: the user schema's \`_id\` must be an ObjectId (the default), String, Number or UUID${id ? ` (got ${id.instance})` : ''}.`,
      );
    }
    // Users are created from an address alone, so a non-ObjectId `_id` needs a default.
    if (id.instance !== 'ObjectId' && id.options.default === undefined) {
      throw new OtpAuthConfigurationError(
        `MongooseOtpAuthStore: the user schema's ${id.instance} \`_id\` needs a \`default\` (e.g. \`() => randomUUID()\`), because the module creates users.`,
      );
    }
    return id.instance;
  }

  private toUser(user: HydratedDocument<TUser>): StoredUser<HydratedDocument<TUser>> {
    const id = userIdToString(user._id);
    if (id === undefined) {
      throw new OtpAuthConfigurationError(
        'MongooseOtpAuthStore: a user document has an `_id` it cannot use as a string.',
      );
    }
    return { id, email: user.email, isVerified: user.isVerified === true, entity: user };
  }
}
