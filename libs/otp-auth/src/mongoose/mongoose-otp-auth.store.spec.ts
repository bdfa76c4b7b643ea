// Server-free checks of the Mongoose store: schema and index definitions, id conversion, option
// validation and the entry point's imports. Nothing here talks to MongoDB: the connection is a
// real Mongoose connection that is never opened, and every asserted call returns before I/O.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Prop, Schema as NestSchema, SchemaFactory, getConnectionToken, getModelToken } from '@nestjs/mongoose';
import mongoose, { type Connection, type IndexOptions, type Model, type Schema } from 'mongoose';
import type { OtpAuthModuleOptions } from '../options/otp-auth-options.interface.js';
import {
  DEFAULT_CODE_RETENTION_SECONDS,
  DEFAULT_OTP_COLLECTION_PREFIX,
  MongooseOtpAuthStore,
  isDuplicateKeyError,
  type MongooseOtpAuthStoreOptions,
} from './mongoose-otp-auth.store.js';
import {
  OTP_AUTH_COLLECTIONS,
  createOtpUserSchema,
  otpAuthSchemas,
  withOtpUserFields,
  type OtpUser,
  type OtpUserFields,
} from './schemas.js';
import { parseUserId, userIdToString } from './user-id.js';
import { OtpAuthConfigurationError } from '../errors.js';

const here = dirname(fileURLToPath(import.meta.url));

type IndexSpec = [Record<string, unknown>, IndexOptions];

/** The Mongoose type name of a path (`String`, `Date`, ...), whatever the schema's generics. */
function pathType(schema: Schema, path: string): string | undefined {
  return (schema.path(path) as { instance: string } | undefined)?.instance;
}

function indexOn(schema: Schema, key: Record<string, 1>): IndexOptions | undefined {
  const found = (schema.indexes() as IndexSpec[]).find(([fields]) => JSON.stringify(fields) === JSON.stringify(key));
  return found?.[1];
}

describe('Mongoose schemas', () => {
  it.each(Object.entries(otpAuthSchemas))('%s: no automatic index builds, no version key', (_name, schema) => {
    expect(schema.get('autoIndex')).toBe(false);
    expect(schema.get('autoCreate')).toBe(false);
    expect(schema.get('versionKey')).toBe(false);
  });

  it('keys every collection but codes by its natural id (the always-unique `_id`)', () => {
    for (const name of ['sessions', 'refreshTokens', 'revocations', 'totp', 'backupCodes', 'mfaChallenges'] as const) {
      expect(pathType(otpAuthSchemas[name], '_id')).toBe('String');
    }
    expect(pathType(otpAuthSchemas.codes, '_id')).toBe('ObjectId');
  });

  it('makes (addressKey, purpose) unique for codes', () => {
    expect(indexOn(otpAuthSchemas.codes, { addressKey: 1, purpose: 1 })).toMatchObject({ unique: true });
  });

  it.each(['codes', 'refreshTokens', 'revocations', 'mfaChallenges'] as const)(
    '%s: TTL index (expireAfterSeconds 0) on the Date `purgeAt`',
    (name) => {
      const schema = otpAuthSchemas[name];
      expect(pathType(schema, 'purgeAt')).toBe('Date');
      expect(indexOn(schema, { purgeAt: 1 })).toMatchObject({ expireAfterSeconds: 0 });
    },
  );

  it('gives sessions, TOTP state and backup codes no TTL (their lifetime is not a date)', () => {
    for (const name of ['sessions', 'totp', 'backupCodes'] as const) {
      const ttl = (otpAuthSchemas[name].indexes() as IndexSpec[]).filter(([, o]) => o.expireAfterSeconds !== undefined);
      expect(ttl).toEqual([]);
    }
  });

  it('indexes the lookups the store makes', () => {
    expect(indexOn(otpAuthSchemas.codes, { expiresAt: 1 })).toBeDefined();
    expect(indexOn(otpAuthSchemas.sessions, { userId: 1 })).toBeDefined();
    expect(indexOn(otpAuthSchemas.refreshTokens, { sessionId: 1 })).toBeDefined();
    expect(indexOn(otpAuthSchemas.revocations, { createdAt: 1 })).toBeDefined();
    expect(
      (otpAuthSchemas.backupCodes.indexes() as IndexSpec[]).some(
        ([fields]) => JSON.stringify(fields) === JSON.stringify({ userId: 1, batch: 1 }),
      ),
    ).toBe(true);
  });

  it('stores times as epoch-millisecond numbers, as the TypeORM store does', () => {
    expect(otpAuthSchemas.codes.path('expiresAt').instance).toBe('Number');
    expect(otpAuthSchemas.refreshTokens.path('expiresAt').instance).toBe('Number');
    expect(otpAuthSchemas.totp.path('lastStep').instance).toBe('Number');
    expect(otpAuthSchemas.sessions.path('amr').instance).toBe('Array');
  });

  it('names the collections like the TypeORM tables', () => {
    expect(Object.values(OTP_AUTH_COLLECTIONS).map((c) => `${DEFAULT_OTP_COLLECTION_PREFIX}${c}`)).toEqual([
      'otp_codes',
      'otp_sessions',
      'otp_refresh_tokens',
      'otp_revocations',
      'otp_totp',
      'otp_backup_codes',
      'otp_mfa_challenges',
    ]);
  });
});

describe('user schema helpers', () => {
  let conn: Connection;
  beforeAll(() => {
    conn = mongoose.createConnection();
  });
  afterAll(async () => {
    await conn.close();
  });

  it('createOtpUserSchema: unique exact email, isVerified false, timestamps, extra fields kept', () => {
    interface User extends OtpUser {
      displayName?: string | null;
    }
    const schema = createOtpUserSchema<User>({
      displayName: { type: String, default: null },
      email: { type: String, lowercase: true },
    });
    expect(indexOn(schema, { email: 1 })).toMatchObject({ unique: true });
    expect(schema.get('timestamps')).toBeTruthy();
    const UserModel = conn.model<User>('HelperUser', schema);
    const doc = new UserModel({ email: ' Mixed@Example.COM ' });
    // The module's definition wins over the extra `email`: no lowercase, no trim.
    expect(doc.email).toBe(' Mixed@Example.COM ');
    expect(doc.isVerified).toBe(false);
    expect(doc.displayName).toBeNull();
    expect(schema.path('createdAt').instance).toBe('Date');
  });

  it('withOtpUserFields adds the fields to an existing schema and keeps its own timestamps', () => {
    const own = new mongoose.Schema({ plan: { type: String, default: 'free' } }, { timestamps: { createdAt: 'born' } });
    const schema = withOtpUserFields(own);
    expect(schema).toBe(own);
    expect(schema.path('email').instance).toBe('String');
    expect(schema.path('isVerified').instance).toBe('Boolean');
    expect(indexOn(schema, { email: 1 })).toMatchObject({ unique: true });
    expect(schema.get('timestamps')).toEqual({ createdAt: 'born' });

    const bare = withOtpUserFields(new mongoose.Schema({}));
    expect(bare.get('timestamps')).toBe(true);
  });
});

describe('user ids', () => {
  it('round-trips ObjectIds through their string form (findUserById(String(id)))', () => {
    const id = new mongoose.Types.ObjectId();
    expect(userIdToString(id)).toBe(String(id));
    expect(parseUserId(String(id), 'ObjectId')).toBe(id.toHexString());
    expect(parseUserId(userIdToString(id), 'ObjectId')).toBe(String(id));
  });

  it('refuses every non-canonical or ill-typed ObjectId string (no CastError later)', () => {
    const hex = new mongoose.Types.ObjectId().toHexString();
    for (const id of [
      '',
      'abc',
      '42',
      'abcdefghijkl', // 12 characters: Types.ObjectId.isValid() accepts it
      hex.toUpperCase(),
      `${hex}0`,
      hex.slice(1),
      ` ${hex}`,
      "1' OR '1'='1",
      'z'.repeat(24),
    ]) {
      expect(parseUserId(id, 'ObjectId')).toBeUndefined();
    }
    for (const id of [undefined, null, 42, { $ne: null }, new mongoose.Types.ObjectId()]) {
      expect(parseUserId(id, 'ObjectId')).toBeUndefined();
    }
  });

  it('handles numeric ids canonically', () => {
    expect(parseUserId('42', 'Number')).toBe(42);
    expect(parseUserId('-7', 'Number')).toBe(-7);
    expect(parseUserId('0', 'Number')).toBe(0);
    for (const id of ['042', '1.5', '1e3', '-0', '+1', '9007199254740993', 'abc', '']) {
      expect(parseUserId(id, 'Number')).toBeUndefined();
    }
    expect(userIdToString(42)).toBe('42');
    expect(userIdToString(1.5)).toBeUndefined();
  });

  it('handles UUID and string ids', () => {
    const uuid = randomUUID();
    expect(userIdToString(new mongoose.mongo.BSON.UUID(uuid))).toBe(uuid);
    expect(parseUserId(uuid, 'UUID')).toBe(uuid);
    expect(parseUserId(uuid.toUpperCase(), 'UUID')).toBeUndefined();
    expect(parseUserId(`${uuid}x`, 'UUID')).toBeUndefined();
    expect(parseUserId('user-1', 'String')).toBe('user-1');
    expect(parseUserId('x'.repeat(129), 'String')).toBeUndefined();
    expect(userIdToString({})).toBeUndefined();
  });
});

describe('MongooseOtpAuthStore options', () => {
  let conn: Connection;
  let UserModel: Model<OtpUser>;
  beforeAll(() => {
    conn = mongoose.createConnection();
    UserModel = conn.model<OtpUser>('OptionsUser', createOtpUserSchema());
  });
  afterAll(async () => {
    await conn.close();
  });

  const configError = (options: unknown, message: RegExp): void => {
    const make = () => new MongooseOtpAuthStore(options as MongooseOtpAuthStoreOptions);
    expect(make).toThrow(OtpAuthConfigurationError);
    expect(make).toThrow(message);
  };

  it('compiles its models on the connection with prefixed collection names, without I/O', () => {
    const store = new MongooseOtpAuthStore({ connection: conn, userModel: UserModel });
    expect(store.collectionNames).toEqual({
      codes: 'otp_codes',
      sessions: 'otp_sessions',
      refreshTokens: 'otp_refresh_tokens',
      revocations: 'otp_revocations',
      totp: 'otp_totp',
      backupCodes: 'otp_backup_codes',
      mfaChallenges: 'otp_mfa_challenges',
    });
    expect(conn.models['OtpAuth:otp_codes']?.collection.collectionName).toBe('otp_codes');
    expect(DEFAULT_CODE_RETENTION_SECONDS).toBe(86_400);
  });

  it("refuses an app-wide sanitizeFilter, which would rewrite the store's range conditions", async () => {
    const instance = new mongoose.Mongoose();
    instance.set('sanitizeFilter', true);
    const sanitized = instance.createConnection();
    const users = sanitized.model<OtpUser>('SanitizedUser', createOtpUserSchema());
    try {
      configError({ connection: sanitized, userModel: users }, /sanitizeFilter/);
    } finally {
      await sanitized.close();
    }
  });

  it('refuses sanitizeFilter set on the connection, at construction and again at init (set after)', async () => {
    const sanitized = mongoose.createConnection();
    sanitized.set('sanitizeFilter', true);
    const users = sanitized.model<OtpUser>('ConnSanitizedUser', createOtpUserSchema());
    const later = mongoose.createConnection();
    const laterUsers = later.model<OtpUser>('LaterSanitizedUser', createOtpUserSchema());
    try {
      configError(
        { connection: sanitized, userModel: users },
        /sanitizeFilter on \(set through the connection options\)/,
      );
      const store = new MongooseOtpAuthStore({ connection: later, userModel: laterUsers });
      later.set('sanitizeFilter', true);
      // init() checks before any I/O.
      await expect(store.init()).rejects.toThrow(/connectionName/);
    } finally {
      await sanitized.close();
      await later.close();
    }
  });

  it('refuses unacknowledged writes (w: 0) from the connection string or the user schema at init', async () => {
    // Nothing listens on port 1: the connection fails at once, and init() refuses before any query.
    const unacked = mongoose.createConnection('mongodb://127.0.0.1:1/otp?w=0', { serverSelectionTimeoutMS: 200 });
    const opening = unacked.asPromise().catch(() => undefined);
    const schemaLevel = createOtpUserSchema();
    schemaLevel.set('writeConcern', { w: 0 });
    try {
      const fromUri = new MongooseOtpAuthStore({
        connection: unacked,
        userModel: unacked.model<OtpUser>('UnackedUser', createOtpUserSchema()),
      });
      await expect(fromUri.init()).rejects.toThrow(/needs acknowledged writes, but `otp_codes` is written with w: 0/);
      const fromSchema = new MongooseOtpAuthStore({
        connection: conn,
        userModel: conn.model<OtpUser>('SchemaUnackedUser', schemaLevel),
      });
      await expect(fromSchema.init()).rejects.toThrow(/`schemaunackedusers` is written with w: 0/);
    } finally {
      await opening;
      await unacked.close();
    }
  });

  it('compiles copies of the module schemas, so global plugins never leak between Mongoose instances', () => {
    const store = new MongooseOtpAuthStore({ connection: conn, userModel: UserModel, collectionPrefix: 'copy_' });
    expect(store.collectionNames.codes).toBe('copy_codes');
    expect(conn.models['OtpAuth:copy_codes']?.schema).not.toBe(otpAuthSchemas.codes);
    expect(conn.models['OtpAuth:copy_codes']?.schema.indexes()).toEqual(otpAuthSchemas.codes.indexes());
  });

  it('accepts a connection that turns sanitizeFilter off under a global true (its own setting wins)', async () => {
    const instance = new mongoose.Mongoose();
    instance.set('sanitizeFilter', true);
    const own = instance.createConnection();
    own.set('sanitizeFilter', false);
    try {
      expect(
        () =>
          new MongooseOtpAuthStore({
            connection: own,
            userModel: own.model<OtpUser>('OwnSettingUser', createOtpUserSchema()),
          }),
      ).not.toThrow();
    } finally {
      await own.close();
    }
  });

  it('refuses a collection prefix that starts with a dot', () => {
    configError({ connection: conn, userModel: UserModel, collectionPrefix: '.otp_' }, /collectionPrefix/);
  });

  it('allows several stores on one connection, with the same or another prefix', () => {
    expect(() => new MongooseOtpAuthStore({ connection: conn, userModel: UserModel })).not.toThrow();
    const other = new MongooseOtpAuthStore({ connection: conn, userModel: UserModel, collectionPrefix: 'auth.' });
    expect(other.collectionNames.refreshTokens).toBe('auth.refresh_tokens');
    const bare = new MongooseOtpAuthStore({ connection: conn, userModel: UserModel, collectionPrefix: '' });
    expect(bare.collectionNames.totp).toBe('totp');
  });

  it('answers null for ids that cannot be a user, before any query (never a CastError)', async () => {
    const store = new MongooseOtpAuthStore({ connection: conn, userModel: UserModel });
    // The connection is never opened: a query would hang and then fail, not resolve null.
    for (const id of ['', 'abc', '42', 'abcdefghijkl', new mongoose.Types.ObjectId().toHexString().toUpperCase()]) {
      await expect(store.findUserById(id)).resolves.toBeNull();
      await expect(store.markUserVerified(id)).resolves.toBeNull();
    }
  });

  it('refuses options that are not a connection and a model', () => {
    configError(undefined, /connection, userModel/);
    configError({ userModel: UserModel }, /`connection` must be a Mongoose Connection/);
    configError({ connection: {}, userModel: UserModel }, /`connection` must be a Mongoose Connection/);
    configError({ connection: conn }, /`userModel` must be a Mongoose model/);
    configError({ connection: conn, userModel: createOtpUserSchema() }, /`userModel` must be a Mongoose model/);
  });

  it('refuses bad prefixes, autoIndex and retention values', () => {
    for (const collectionPrefix of ['bad$', 'with space', 'system.', 'x'.repeat(41), 42]) {
      configError({ connection: conn, userModel: UserModel, collectionPrefix }, /collectionPrefix/);
    }
    configError({ connection: conn, userModel: UserModel, autoIndex: 'yes' }, /autoIndex/);
    for (const codeRetentionSeconds of [0, 59, 1.5, -1, Number.NaN, '3600', 400 * 86_400]) {
      configError({ connection: conn, userModel: UserModel, codeRetentionSeconds }, /codeRetentionSeconds/);
    }
    expect(
      () => new MongooseOtpAuthStore({ connection: conn, userModel: UserModel, codeRetentionSeconds: 3600 }),
    ).not.toThrow();
  });

  it('refuses user schemas without the module fields', () => {
    const noEmail = conn.model('NoEmailUser', new mongoose.Schema({ isVerified: Boolean }));
    configError({ connection: conn, userModel: noEmail }, /String `email`/);
    const noVerified = conn.model('NoVerifiedUser', new mongoose.Schema({ email: String }));
    configError({ connection: conn, userModel: noVerified }, /Boolean `isVerified`/);
  });

  it('accepts ObjectId, and defaulted String/Number/UUID ids; refuses other or undefaulted ids', () => {
    const withId = (name: string, id: Record<string, unknown>) =>
      conn.model(name, withOtpUserFields(new mongoose.Schema({ _id: id }))) as unknown as Model<OtpUserFields>;
    expect(
      () =>
        new MongooseOtpAuthStore({
          connection: conn,
          userModel: withId('UuidUser', { type: mongoose.Schema.Types.UUID, default: () => randomUUID() }),
        }),
    ).not.toThrow();
    expect(
      () =>
        new MongooseOtpAuthStore({
          connection: conn,
          userModel: withId('StringUser', { type: String, default: () => randomUUID() }),
        }),
    ).not.toThrow();
    configError({ connection: conn, userModel: withId('BareStringUser', { type: String }) }, /needs a `default`/);
    configError(
      { connection: conn, userModel: withId('MixedUser', { type: mongoose.Schema.Types.Mixed, default: () => ({}) }) },
      /must be an ObjectId/,
    );
  });
});

@NestSchema()
class NestUser implements OtpUserFields {
  @Prop({ type: String })
  email!: string;

  @Prop({ type: Boolean })
  isVerified!: boolean;

  @Prop({ type: String, default: null })
  displayName?: string | null;
}

describe('with @nestjs/mongoose', () => {
  let conn: Connection;
  beforeAll(() => {
    conn = mongoose.createConnection();
  });
  afterAll(async () => {
    await conn.close();
  });

  it('takes a SchemaFactory schema through withOtpUserFields and fits OtpAuthModuleOptions.store', () => {
    const schema = withOtpUserFields(SchemaFactory.createForClass(NestUser));
    expect(indexOn(schema, { email: 1 })).toMatchObject({ unique: true });
    // What forRootAsync({ inject: [getConnectionToken(), getModelToken(NestUser.name)] }) hands the factory.
    expect(typeof getConnectionToken()).toBe('string');
    expect(getModelToken(NestUser.name)).toBe('NestUserModel');
    const userModel: Model<NestUser> = conn.model<NestUser>(NestUser.name, schema);
    const options: Pick<OtpAuthModuleOptions, 'store'> = {
      store: new MongooseOtpAuthStore({ connection: conn, userModel }),
    };
    expect(options.store).toBeInstanceOf(MongooseOtpAuthStore);
    expect(new userModel({ email: 'n@example.com' }).isVerified).toBe(false);
  });
});

describe('isDuplicateKeyError', () => {
  it('recognises E11000 and nothing else', () => {
    expect(
      isDuplicateKeyError(new mongoose.mongo.MongoServerError({ errmsg: 'E11000 duplicate key', code: 11000 })),
    ).toBe(true);
    expect(isDuplicateKeyError(new mongoose.mongo.MongoServerError({ errmsg: 'ns not found', code: 26 }))).toBe(false);
    expect(isDuplicateKeyError(new Error('E11000'))).toBe(false);
    expect(isDuplicateKeyError(null)).toBe(false);
    expect(isDuplicateKeyError('E11000')).toBe(false);
  });
});

describe('nestjs-otp-auth/mongoose entry point', () => {
  /** Bare module specifiers that loading `entry` loads (type-only imports are erased, so skipped). */
  function runtimeImports(entry: string): Set<string> {
    const bare = new Set<string>();
    const seen = new Set<string>();
    const pending = [entry];
    const statement =
      /(?:^|[\n;])\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const match of readFileSync(file, 'utf8').matchAll(statement)) {
        if (match[1]) continue;
        const specifier = match[2] ?? match[3]!;
        if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
        else bare.add(specifier);
      }
    }
    return bare;
  }

  it('loads mongoose and never typeorm, directly or through the core files it imports', () => {
    const loaded = [...runtimeImports(join(here, 'index.ts'))];
    expect(loaded).toContain('mongoose');
    expect(loaded.filter((s) => /typeorm/i.test(s))).toEqual([]);
  });

  it('has no file that names typeorm or ../typeorm in an import', () => {
    for (const file of readdirSync(here).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))) {
      expect(readFileSync(join(here, file), 'utf8')).not.toMatch(/from\s+['"][^'"]*typeorm[^'"]*['"]/);
    }
  });
});
