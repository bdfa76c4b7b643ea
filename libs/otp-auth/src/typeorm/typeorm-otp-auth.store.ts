import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { QueryFailedError, type DataSource, type EntityTarget, type ObjectLiteral, type Repository } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { someCause } from '../store/store-unavailable.js';
import type { CleanupPolicy, CleanupReport, OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type {
  BackupCodeRecord,
  MfaChallengeRecord,
  TotpAttemptLimits,
  TotpRecord,
} from '../store/totp-store.interface.js';
import {
  OtpBackupCodeEntity,
  OtpCodeEntity,
  OtpMfaChallengeEntity,
  OtpRefreshTokenEntity,
  OtpRevocationEntity,
  OtpSessionEntity,
  OtpTotpEntity,
  otpAuthEntities,
  type OtpBaseUser,
} from './entities.js';
import { otpAuthMigrations } from './migrations.js';
import { OtpAuthConfigurationError } from '../errors.js';
import { type StoredUser } from '../store/user-store.interface.js';
import { type AttemptLimits, type CodeRecord, type NewCode } from '../store/code-store.interface.js';
import {
  type RefreshTokenRecord,
  type RefreshTokenWithSession,
  type RevocationRecord,
  type SessionRecord,
} from '../store/session-store.interface.js';

/** Settings of {@link TypeOrmOtpAuthStore}. */
export interface TypeOrmOtpAuthStoreOptions<TUser extends OtpBaseUser> {
  /** The application's user entity (extends `OtpBaseUser`). */
  userEntity: EntityTarget<TUser>;
}

/** Sessions younger than this are never removed as orphans (their first token may be in flight). */
const ORPHAN_SESSION_AGE_MS = 60_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a duplicate-key error on PostgreSQL, MySQL/MariaDB or SQLite. */
export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = (error as QueryFailedError & { driverError?: { code?: string; errno?: number } }).driverError;
  const code = driverError?.code ?? '';
  return (
    code === '23505' ||
    code === 'ER_DUP_ENTRY' ||
    driverError?.errno === 1062 ||
    code.startsWith('SQLITE_CONSTRAINT_PRIMARYKEY') ||
    code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}

/** PostgreSQL SQLSTATEs of a lost, refused or overloaded server (class 08, shutdown, too many connections, statement timeout). */
const POSTGRES_UNAVAILABLE = /^(08...|57P0[123]|53300|57014)$/;
/** mysql2's codes for a lost, refused or overloaded server. */
const MYSQL_UNAVAILABLE = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ECONNREFUSED',
]);
/** pg's own messages for a dead or timed-out connection (they carry no code). */
const PG_CONNECTION_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Cannot use a pool after calling end|Can't add new command when connection is in closed state/;

/**
 * Whether a TypeORM or driver error means the database cannot be reached right now (PostgreSQL,
 * MySQL/MariaDB, a busy SQLite file), as opposed to a query the database refused.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return someCause(error, (e) => {
    const code = typeof e['code'] === 'string' ? e['code'] : '';
    if (POSTGRES_UNAVAILABLE.test(code) || MYSQL_UNAVAILABLE.has(code) || code.startsWith('SQLITE_BUSY')) return true;
    if (e['fatal'] === true && code !== '') return true; // mysql2: the connection is gone
    return typeof e['message'] === 'string' && PG_CONNECTION_MESSAGES.test(e['message']);
  });
}

/** Lower-case hex SHA-256 of the exact address: safe under any collation. */
function addressKey(email: string): string {
  return createHash('sha256').update(email).digest('hex');
}

function toCode(row: OtpCodeEntity, email: string): CodeRecord {
  return {
    email,
    purpose: row.purpose,
    codeHash: row.codeHash,
    generation: row.generation,
    expiresAt: row.expiresAt,
    attempts: row.attempts,
    sentAt: row.sentAt,
    failureCount: row.failureCount,
    failureWindowStart: row.failureWindowStart,
  };
}

/**
 * An INSERT alone: `Repository.insert` re-reads columns with database defaults afterwards on
 * drivers without RETURNING (SQLite, MySQL), a statement the callers never need.
 */
async function insertWithoutReload<T extends ObjectLiteral>(
  repository: Repository<T>,
  values: QueryDeepPartialEntity<T>,
): Promise<void> {
  await repository.createQueryBuilder().insert().values(values).updateEntity(false).execute();
}

function toSession(row: OtpSessionEntity): SessionRecord {
  return {
    id: row.id,
    userId: row.userId,
    amr: row.amr === '' ? [] : row.amr.split(','),
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}

function toTotp(row: OtpTotpEntity): TotpRecord {
  return {
    userId: row.userId,
    encryptedSecret: row.encryptedSecret,
    keyId: row.keyId,
    active: Boolean(row.active),
    lastStep: row.lastStep,
    backupBatch: row.backupBatch,
    failureCount: row.failureCount,
    failureWindowStart: row.failureWindowStart,
    createdAt: row.createdAt,
    confirmedAt: row.confirmedAt,
  };
}

function toBackupCode(row: OtpBackupCodeEntity): BackupCodeRecord {
  return {
    id: row.id,
    userId: row.userId,
    batch: row.batch,
    salt: row.salt,
    hash: row.hash,
    usedAt: row.usedAt,
  };
}

function toMfaChallenge(row: OtpMfaChallengeEntity): MfaChallengeRecord {
  return {
    id: row.id,
    userId: row.userId,
    amr: row.amr === '' ? [] : row.amr.split(','),
    attempts: row.attempts,
    expiresAt: row.expiresAt,
    consumedAt: row.consumedAt,
  };
}

/** How often `savePendingTotp` retries when the row vanished between its insert and its update. */
const PENDING_TOTP_TRIES = 3;

/**
 * The store on TypeORM: SQLite (better-sqlite3), PostgreSQL and MySQL/MariaDB. Every rule is one
 * conditional UPDATE or one INSERT against a unique key, so it needs no transactions and holds
 * across connections and app instances. Where two writes belong together (a session and its first
 * token) they are ordered so that a failure in between leaves nothing usable.
 */
export class TypeOrmOtpAuthStore<TUser extends OtpBaseUser = OtpBaseUser> implements OtpAuthStore<TUser> {
  private users!: Repository<TUser>;
  private primary!: ColumnMetadata;
  /** See {@link userIdTextExpression}; set by `init()`. */
  private userIdText: ((alias: string) => string) | undefined;
  private readonly codes: Repository<OtpCodeEntity>;
  private readonly sessions: Repository<OtpSessionEntity>;
  private readonly tokens: Repository<OtpRefreshTokenEntity>;
  private readonly revocations: Repository<OtpRevocationEntity>;
  private readonly totp: Repository<OtpTotpEntity>;
  private readonly backupCodes: Repository<OtpBackupCodeEntity>;
  private readonly mfaChallenges: Repository<OtpMfaChallengeEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: TypeOrmOtpAuthStoreOptions<TUser>,
  ) {
    this.codes = dataSource.getRepository(OtpCodeEntity);
    this.sessions = dataSource.getRepository(OtpSessionEntity);
    this.tokens = dataSource.getRepository(OtpRefreshTokenEntity);
    this.revocations = dataSource.getRepository(OtpRevocationEntity);
    this.totp = dataSource.getRepository(OtpTotpEntity);
    this.backupCodes = dataSource.getRepository(OtpBackupCodeEntity);
    this.mfaChallenges = dataSource.getRepository(OtpMfaChallengeEntity);
  }

  /** See {@link isDatabaseUnavailable}. */
  isUnavailableError(error: unknown): boolean {
    return isDatabaseUnavailable(error);
  }

  /**
   * Checks that the entities are registered, the user entity has what the module needs and their
   * tables exist. Throws `OtpAuthConfigurationError` naming what is wrong; an unreachable
   * database fails with the driver's own error.
   */
  async init(): Promise<void> {
    if (!this.dataSource.isInitialized) await this.dataSource.initialize();
    for (const entity of [
      OtpCodeEntity,
      OtpSessionEntity,
      OtpRefreshTokenEntity,
      OtpRevocationEntity,
      OtpTotpEntity,
      OtpBackupCodeEntity,
      OtpMfaChallengeEntity,
    ]) {
      if (!this.dataSource.hasMetadata(entity)) {
        throw new OtpAuthConfigurationError(
          `the DataSource does not know ${entity.name}; add \`...otpAuthEntities\` (from 'nestjs-otp-auth/typeorm') to its \`entities\`.`,
        );
      }
    }
    if (!this.dataSource.hasMetadata(this.options.userEntity)) {
      throw new OtpAuthConfigurationError('the DataSource does not know the `userEntity`; add it to its `entities`.');
    }
    this.users = this.dataSource.getRepository(this.options.userEntity);
    const { primaryColumns } = this.users.metadata;
    if (primaryColumns.length !== 1 || !primaryColumns[0]) {
      throw new OtpAuthConfigurationError(
        'the user entity needs exactly one primary column (e.g. `@PrimaryGeneratedColumn() id`).',
      );
    }
    this.primary = primaryColumns[0];
    for (const property of ['email', 'isVerified']) {
      if (!this.users.metadata.findColumnWithPropertyName(property)) {
        throw new OtpAuthConfigurationError(`the user entity has no \`${property}\` column; extend \`OtpBaseUser\`.`);
      }
    }
    await this.assertTablesExist();
    await this.warnAboutLooseEmailCollation();
    this.userIdText = await this.userIdTextExpression();
  }

  /**
   * The user's primary key as text in SQL, comparable with the module tables' string user ids
   * (`otp_totp.user_id`) with that column's index still usable: the cast is on the users' side.
   * MySQL/MariaDB need the column's own character set and collation on the cast (two implicit
   * collations cannot be compared); undefined when they cannot be read, and then the TOTP state
   * is read in a statement of its own.
   */
  private async userIdTextExpression(): Promise<((alias: string) => string) | undefined> {
    const quote = (alias: string) => `${alias}.${this.dataSource.driver.escape(this.primary.databaseName)}`;
    const type = this.dataSource.options.type;
    if (type === 'postgres') return (alias) => `CAST(${quote(alias)} AS VARCHAR)`;
    if (type === 'better-sqlite3' || type === 'sqljs') return (alias) => `CAST(${quote(alias)} AS TEXT)`;
    if (type !== 'mysql' && type !== 'mariadb') return undefined;
    const table = this.dataSource.getMetadata(OtpTotpEntity);
    try {
      const rows = (await this.dataSource.query(
        'SELECT CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?',
        [table.database ?? null, table.tableName, 'user_id'],
      )) as { charset: string | null; collation: string | null }[];
      const { charset, collation } = rows[0] ?? {};
      // Names from the catalog, checked before they go into SQL.
      if (!charset || !collation || !/^\w+$/.test(charset) || !/^\w+$/.test(collation)) return undefined;
      return (alias) => `CAST(${quote(alias)} AS CHAR CHARACTER SET ${charset}) COLLATE ${collation}`;
    } catch {
      return undefined;
    }
  }

  /**
   * Without this, a database nobody ran `synchronize` or the migration on fails the first query
   * with the driver's "no such table" (RevocationList's, at startup), which says nothing about the
   * fix. `hasTable` is one small catalog query per table; `getTables` would load every column and
   * index of all of them (the app's user table too) to answer the same question. Errors are not
   * caught: an outage must stay the driver's error, never become a configuration error.
   */
  private async assertTablesExist(): Promise<void> {
    const own = otpAuthEntities.map((entity) => this.dataSource.getMetadata(entity).tablePath);
    const users = this.users.metadata.tablePath;
    const missing: string[] = [];
    const queryRunner = this.dataSource.createQueryRunner();
    try {
      // One after another: one connection runs one query at a time (pg deprecates queueing).
      for (const path of [...own, users]) if (!(await queryRunner.hasTable(path))) missing.push(path);
    } finally {
      await queryRunner.release();
    }
    if (missing.length === 0) return;
    const usersMissing = missing.includes(users);
    const ownMissing = missing.length > (usersMissing ? 1 : 0);
    const migrations = otpAuthMigrations.map((migration) => new migration().name).join(', ');
    const yours = `${users} is your user entity's table: create it in your own migration`;
    const production = ownMissing
      ? `In production, run the module's migration ${migrations} (from 'nestjs-otp-auth/typeorm'): ` +
        '`migrations: [...otpAuthMigrations, ...yourMigrations]` and `migrationsRun: true` on the DataSource, ' +
        'or `npx typeorm migration:run -d <your data source>`' +
        (usersMissing ? `; ${yours}.` : '.')
      : `In production, ${yours} (the module's migration creates only the module's tables).`;
    throw new OtpAuthConfigurationError(
      `the database has no table ${missing.join(', ')}. ` +
        `In development, set \`synchronize: true\` on the DataSource. ${production}`,
    );
  }

  /**
   * MySQL/MariaDB compare with the column's collation, and the default ones are accent- and
   * case-insensitive: "kevin@exámple.com" then occupies the unique slot of "kevin@example.com".
   * Sign-in stays exact (the store compares addresses itself), but whoever signs up first with a
   * look-alike keeps the real owner from signing up. A binary collation closes that.
   */
  private async warnAboutLooseEmailCollation(): Promise<void> {
    if (this.dataSource.options.type !== 'mysql' && this.dataSource.options.type !== 'mariadb') return;
    const column = this.users.metadata.findColumnWithPropertyName('email')!;
    let rows: { collation: string | null }[];
    try {
      rows = (await this.dataSource.query(
        'SELECT COLLATION_NAME AS collation FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?',
        [this.users.metadata.database ?? null, this.users.metadata.tableName, column.databaseName],
      )) as { collation: string | null }[];
    } catch {
      return; // advice only: never a reason not to start
    }
    const collation = rows[0]?.collation;
    if (collation && !collation.endsWith('_bin')) {
      new Logger('OtpAuth').warn(
        `users.${column.databaseName} uses the collation ${collation}, which treats look-alike addresses as equal ` +
          `("kevin@exámple.com" = "kevin@example.com"): a look-alike signed up first keeps the real owner out. ` +
          `Use a binary collation: ALTER TABLE ${this.users.metadata.tableName} MODIFY ${column.databaseName} ` +
          `VARCHAR(${column.length || 254}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL.`,
      );
    }
  }

  // ---- users -------------------------------------------------------------------------------

  async findUserById(id: string): Promise<StoredUser<TUser> | null> {
    const key = this.parseId(id);
    if (key === undefined) return null;
    const user = await this.users.findOneBy({ [this.primary.propertyName]: key } as never);
    return user ? this.toUser(user) : null;
  }

  async findUserWithSecondFactor(id: string): Promise<{ user: StoredUser<TUser>; totpActive: boolean } | null> {
    const key = this.parseId(id);
    if (key === undefined) return null;
    const found = await this.findUserWithTotp('id', key);
    if (!found) return null;
    const totpActive = found.totpActive ?? (await this.findTotp(found.id))?.active === true;
    return { user: found, totpActive };
  }

  async findUserByEmail(email: string): Promise<StoredUser<TUser> | null> {
    // With the TOTP state, so the sign-in that looks the user up needs no second read.
    const user = await this.findUserWithTotp('email', email);
    // A case- or accent-insensitive collation can match a different address; only exact counts.
    return user && user.email === email ? user : null;
  }

  /**
   * A user by primary key or email, with whether its TOTP enrolment is active, in one statement:
   * a scalar subquery on the TOTP table's string key (no join across the id column types).
   */
  private async findUserWithTotp(by: 'id' | 'email', value: unknown): Promise<StoredUser<TUser> | null> {
    const column = by === 'id' ? this.primary.propertyName : 'email';
    const userIdText = this.userIdText;
    if (!userIdText) {
      const user = await this.users.findOneBy({ [column]: value } as never);
      return user ? this.toUser(user) : null;
    }
    const { entities, raw } = await this.users
      .createQueryBuilder('u')
      .addSelect(
        (sub) =>
          sub
            .select('t.active')
            .from(OtpTotpEntity, 't')
            .where(`t.user_id = ${userIdText('u')}`),
        'totp_active',
      )
      .where(`u.${column} = :value`, { value })
      .getRawAndEntities<{ totp_active: unknown }>();
    const user = entities[0];
    if (!user) return null;
    const active = raw[0]?.totp_active;
    return { ...this.toUser(user), totpActive: active === true || active === 1 || active === '1' || active === 't' };
  }

  async createOrGetUser(email: string, options: { verified?: boolean } = {}): Promise<StoredUser<TUser> | null> {
    try {
      await insertWithoutReload(this.users, { email, isVerified: options.verified === true } as never);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
    // Null when the unique index holds a different address that the collation deems equal.
    return this.findUserByEmail(email);
  }

  async markUserVerified(id: string): Promise<StoredUser<TUser> | null> {
    const key = this.parseId(id);
    if (key === undefined) return null;
    await this.users.update({ [this.primary.propertyName]: key } as never, { isVerified: true } as never);
    return this.findUserById(id);
  }

  // ---- codes -------------------------------------------------------------------------------

  async findCode(email: string, purpose: string): Promise<CodeRecord | null> {
    const row = await this.codes.findOneBy({ addressKey: addressKey(email), purpose });
    return row ? toCode(row, email) : null;
  }

  async replaceCode(expected: CodeRecord | null, next: NewCode): Promise<CodeRecord | null> {
    const fresh = { codeHash: next.codeHash, expiresAt: next.expiresAt, attempts: 0, sentAt: next.now };
    if (expected === null) {
      const row: CodeRecord = {
        email: next.email,
        purpose: next.purpose,
        generation: 1,
        failureCount: 0,
        failureWindowStart: null,
        ...fresh,
      };
      try {
        const { email, ...columns } = row;
        await insertWithoutReload(this.codes, { ...columns, addressKey: addressKey(email) });
        return row;
      } catch (error) {
        if (isUniqueViolation(error)) return null;
        throw error;
      }
    }
    const generation = expected.generation + 1;
    const result = await this.codes
      .createQueryBuilder()
      .update()
      .set({ ...fresh, generation })
      .where('address_key = :key AND purpose = :purpose AND generation = :expected', {
        key: addressKey(next.email),
        purpose: next.purpose,
        expected: expected.generation,
      })
      .execute();
    return result.affected === 1 ? { ...expected, ...fresh, generation } : null;
  }

  async restoreCode(email: string, purpose: string, generation: number, previous: CodeRecord | null): Promise<void> {
    const where = 'address_key = :key AND purpose = :purpose AND generation = :generation';
    const params = { key: addressKey(email), purpose, generation };
    if (previous === null) {
      await this.codes.createQueryBuilder().delete().where(where, params).execute();
      return;
    }
    const { codeHash, expiresAt, attempts, sentAt } = previous;
    await this.codes
      .createQueryBuilder()
      .update()
      .set({ codeHash, expiresAt, attempts, sentAt, generation: previous.generation })
      .where(where, params)
      .execute();
  }

  async reserveAttempt(email: string, purpose: string, generation: number, limits: AttemptLimits): Promise<boolean> {
    const windowOver = '(failure_window_start IS NULL OR failure_window_start <= :cutoff)';
    // Key order is SET order; MySQL evaluates SET left to right, so the window start is read
    // by failure_count's expression before it is itself reassigned.
    const result = await this.codes
      .createQueryBuilder()
      .update()
      .set({
        attempts: () => 'attempts + 1',
        failureCount: () => `CASE WHEN ${windowOver} THEN 1 ELSE failure_count + 1 END`,
        failureWindowStart: () => `CASE WHEN ${windowOver} THEN :now ELSE failure_window_start END`,
      })
      .where('address_key = :key AND purpose = :purpose AND generation = :generation')
      .andWhere('code_hash IS NOT NULL AND expires_at > :now AND attempts < :maxAttempts')
      .andWhere(`(${windowOver} OR failure_count < :maxFailures)`)
      .setParameters({
        key: addressKey(email),
        purpose,
        generation,
        now: limits.now,
        cutoff: limits.failureWindowCutoff,
        maxAttempts: limits.maxAttempts,
        maxFailures: limits.maxFailures,
      })
      .execute();
    return result.affected === 1;
  }

  async consumeCode(email: string, purpose: string, generation: number): Promise<boolean> {
    // The generation moves on, so a snapshot taken before consumption can never restore the code.
    const result = await this.codes
      .createQueryBuilder()
      .update()
      .set({ codeHash: null, failureCount: 0, failureWindowStart: null, generation: generation + 1 })
      .where('address_key = :key AND purpose = :purpose AND generation = :generation AND code_hash IS NOT NULL', {
        key: addressKey(email),
        purpose,
        generation,
      })
      .execute();
    return result.affected === 1;
  }

  // ---- sessions and refresh tokens ---------------------------------------------------------

  /**
   * The token first, then the session, and no transaction (better-sqlite3 shares one connection
   * between requests, so a transaction there would take in other requests' writes): a connection
   * lost in between leaves a token whose session does not exist, which `findRefreshToken` never
   * returns and `cleanup()` removes at its expiry; never a session without its token (the fault
   * test found that state when the session came first).
   */
  async createSession(session: SessionRecord, firstToken: RefreshTokenRecord): Promise<void> {
    await this.tokens.insert({ ...firstToken });
    await this.sessions.insert({
      id: session.id,
      userId: session.userId,
      amr: session.amr.join(','),
      createdAt: session.createdAt,
      revokedAt: session.revokedAt,
    });
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | null> {
    // One statement: the token and its session, joined (refresh and logout read both).
    const token = (await this.tokens
      .createQueryBuilder('t')
      .innerJoinAndMapOne('t.session', OtpSessionEntity, 's', 's.id = t.sessionId')
      .where('t.tokenHash = :tokenHash', { tokenHash })
      .getOne()) as (OtpRefreshTokenEntity & { session?: OtpSessionEntity }) | null;
    const session = token?.session;
    if (!token || !session) return null;
    return {
      token: {
        tokenHash: token.tokenHash,
        sessionId: token.sessionId,
        userId: token.userId,
        parentHash: token.parentHash,
        createdAt: token.createdAt,
        expiresAt: token.expiresAt,
      },
      session: toSession(session),
    };
  }

  async insertSuccessor(successor: RefreshTokenRecord): Promise<boolean> {
    try {
      await this.tokens.insert({ ...successor });
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  async revokeSession(sessionId: string, now: number, revocation: RevocationRecord): Promise<boolean> {
    // The revocation entry goes first: once it exists, every instance refuses the session's tokens.
    await this.addRevocation(revocation);
    const result = await this.sessions
      .createQueryBuilder()
      .update()
      .set({ revokedAt: now })
      .where('id = :sessionId AND revoked_at IS NULL', { sessionId })
      .execute();
    return result.affected === 1;
  }

  async listActiveSessionIds(userId: string): Promise<string[]> {
    const rows = await this.sessions
      .createQueryBuilder('s')
      .select('s.id', 'id')
      .where('s.user_id = :userId AND s.revoked_at IS NULL', { userId })
      .getRawMany<{ id: string }>();
    return rows.map((row) => row.id);
  }

  async addRevocation(revocation: RevocationRecord): Promise<void> {
    try {
      await this.revocations.insert({ ...revocation });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }

  async listRevocations(since: number, now: number): Promise<RevocationRecord[]> {
    const rows = await this.revocations
      .createQueryBuilder('r')
      .where('r.created_at >= :since AND r.expires_at > :now', { since, now })
      .getMany();
    return rows.map((row) => ({ key: row.key, expiresAt: row.expiresAt, createdAt: row.createdAt }));
  }

  // ---- TOTP enrolment ----------------------------------------------------------------------

  async findTotp(userId: string): Promise<TotpRecord | null> {
    const row = await this.totp.findOneBy({ userId });
    // Ids come from signed tokens, but a padding- or case-insensitive collation must not widen a match.
    return row && row.userId === userId ? toTotp(row) : null;
  }

  /**
   * Inserts the enrolment as pending (whatever `record.active` says), or replaces a pending one in
   * place. A replacement keeps the user-wide failure window, as a new login code does.
   */
  async savePendingTotp(record: TotpRecord): Promise<boolean> {
    const { userId } = record;
    const fresh = {
      encryptedSecret: record.encryptedSecret,
      keyId: record.keyId,
      lastStep: record.lastStep,
      backupBatch: record.backupBatch,
      createdAt: record.createdAt,
      confirmedAt: record.confirmedAt,
    };
    for (let i = 0; i < PENDING_TOTP_TRIES; i++) {
      try {
        await this.totp.insert({
          ...fresh,
          userId,
          active: false,
          failureCount: record.failureCount,
          failureWindowStart: record.failureWindowStart,
        });
        return true;
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
      }
      const result = await this.totp
        .createQueryBuilder()
        .update()
        .set(fresh)
        .where('user_id = :userId AND active = :no', { userId, no: false })
        .execute();
      if (result.affected === 1) return true;
      // Refused because the enrolment is active; otherwise the row was deleted in between: retry.
      const current = await this.totp.findOneBy({ userId });
      if (current?.active) return false;
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
    const result = await this.totp
      .createQueryBuilder()
      .update()
      .set({ active: true, lastStep, backupBatch, confirmedAt: now, failureCount: 0, failureWindowStart: null })
      .where('user_id = :userId AND active = :no AND encrypted_secret = :encryptedSecret', {
        userId,
        no: false,
        encryptedSecret,
      })
      .execute();
    return result.affected === 1;
  }

  async deleteTotp(userId: string): Promise<boolean> {
    const result = await this.totp.createQueryBuilder().delete().where('user_id = :userId', { userId }).execute();
    // Every code of the user not in a current batch; codes of an enrolment that a concurrent
    // request made in the meantime survive.
    await this.backupCodes
      .createQueryBuilder()
      .delete()
      .where('user_id = :userId', { userId })
      .andWhere(`NOT EXISTS (${this.currentBatchOf(this.table(this.backupCodes))})`)
      .execute();
    return result.affected === 1;
  }

  async acceptTotpStep(userId: string, step: number, encryptedSecret: string): Promise<boolean> {
    const result = await this.totp
      .createQueryBuilder()
      .update()
      .set({ lastStep: step, failureCount: 0, failureWindowStart: null })
      .where('user_id = :userId AND active = :yes AND (last_step IS NULL OR last_step < :step)', {
        userId,
        yes: true,
        step,
      })
      .andWhere('encrypted_secret = :encryptedSecret', { encryptedSecret })
      .execute();
    return result.affected === 1;
  }

  async reserveTotpAttempt(userId: string, limits: TotpAttemptLimits): Promise<boolean> {
    const windowOver = '(failure_window_start IS NULL OR failure_window_start <= :cutoff)';
    // Key order is SET order: failure_count reads the window start before it is reassigned (MySQL).
    const result = await this.totp
      .createQueryBuilder()
      .update()
      .set({
        failureCount: () => `CASE WHEN ${windowOver} THEN 1 ELSE failure_count + 1 END`,
        failureWindowStart: () => `CASE WHEN ${windowOver} THEN :now ELSE failure_window_start END`,
      })
      .where('user_id = :userId')
      .andWhere(`(${windowOver} OR failure_count < :maxFailures)`)
      .setParameters({
        userId,
        now: limits.now,
        cutoff: limits.failureWindowCutoff,
        maxFailures: limits.maxFailures,
      })
      .execute();
    return result.affected === 1;
  }

  async clearTotpFailures(userId: string): Promise<void> {
    await this.totp
      .createQueryBuilder()
      .update()
      .set({ failureCount: 0, failureWindowStart: null })
      .where('user_id = :userId', { userId })
      .execute();
  }

  // ---- backup codes ------------------------------------------------------------------------

  async insertBackupCodes(codes: readonly BackupCodeRecord[]): Promise<void> {
    if (codes.length === 0) return;
    await this.backupCodes.insert(codes.map((code) => ({ ...code })));
  }

  async setBackupBatch(userId: string, batch: string): Promise<boolean> {
    const result = await this.totp
      .createQueryBuilder()
      .update()
      .set({ backupBatch: batch })
      .where('user_id = :userId AND active = :yes', { userId, yes: true })
      .execute();
    return result.affected === 1;
  }

  async listUsableBackupCodes(userId: string): Promise<BackupCodeRecord[]> {
    const rows = await this.backupCodes
      .createQueryBuilder('c')
      .where('c.user_id = :userId AND c.used_at IS NULL', { userId })
      .andWhere(`EXISTS (${this.currentBatchOf('c', true)})`, { yes: true })
      .orderBy('c.id')
      .getMany();
    return rows.filter((row) => row.userId === userId).map(toBackupCode);
  }

  /** Marks the code used only while it is unused and its batch is still the valid one. */
  async useBackupCode(id: string, now: number): Promise<boolean> {
    const result = await this.backupCodes
      .createQueryBuilder()
      .update()
      .set({ usedAt: now })
      .where('id = :id AND used_at IS NULL', { id })
      .andWhere(`EXISTS (${this.currentBatchOf(this.table(this.backupCodes), true)})`, { yes: true })
      .execute();
    return result.affected === 1;
  }

  // ---- MFA challenges ----------------------------------------------------------------------

  async createMfaChallenge(challenge: MfaChallengeRecord): Promise<void> {
    await this.mfaChallenges.insert({ ...challenge, amr: challenge.amr.join(',') });
  }

  async findMfaChallenge(id: string): Promise<MfaChallengeRecord | null> {
    const row = await this.mfaChallenges.findOneBy({ id });
    // Exact match only, whatever the collation.
    return row && row.id === id ? toMfaChallenge(row) : null;
  }

  async reserveMfaAttempt(id: string, maxAttempts: number, now: number): Promise<boolean> {
    const result = await this.mfaChallenges
      .createQueryBuilder()
      .update()
      .set({ attempts: () => 'attempts + 1' })
      .where('id = :id AND consumed_at IS NULL AND expires_at > :now AND attempts < :maxAttempts', {
        id,
        now,
        maxAttempts,
      })
      .execute();
    return result.affected === 1;
  }

  async consumeMfaChallenge(id: string, now: number): Promise<boolean> {
    const result = await this.mfaChallenges
      .createQueryBuilder()
      .update()
      .set({ consumedAt: now })
      .where('id = :id AND consumed_at IS NULL AND expires_at > :now', { id, now })
      .execute();
    return result.affected === 1;
  }

  // ---- maintenance -------------------------------------------------------------------------

  async cleanup(policy: CleanupPolicy): Promise<CleanupReport> {
    const { now } = policy;
    const retained = now - policy.codeRetention;
    const codes = await this.codes
      .createQueryBuilder()
      .delete()
      .where('expires_at <= :now AND sent_at <= :retained', { now, retained })
      .andWhere('(failure_window_start IS NULL OR failure_window_start <= :retained)', { retained })
      .execute();
    const refreshTokens = await this.tokens
      .createQueryBuilder()
      .delete()
      .where('expires_at <= :now', { now })
      .execute();
    const tokenTable = this.dataSource.driver.escape(this.tokens.metadata.tableName);
    const sessionTable = this.dataSource.driver.escape(this.sessions.metadata.tableName);
    const sessions = await this.sessions
      .createQueryBuilder()
      .delete()
      .where('created_at <= :orphanCutoff', { orphanCutoff: now - ORPHAN_SESSION_AGE_MS })
      .andWhere(`NOT EXISTS (SELECT 1 FROM ${tokenTable} t WHERE t.session_id = ${sessionTable}.id)`)
      .execute();
    const revocations = await this.revocations
      .createQueryBuilder()
      .delete()
      .where('expires_at <= :now', { now })
      .execute();
    // Consumed challenges stay until they expire: the row is what makes them single-use.
    const challenges = await this.mfaChallenges
      .createQueryBuilder()
      .delete()
      .where('expires_at <= :now', { now })
      .execute();
    const deadBackupCodes = await this.backupCodes
      .createQueryBuilder()
      .delete()
      .where(`(used_at IS NOT NULL OR NOT EXISTS (${this.currentBatchOf(this.table(this.backupCodes))}))`)
      .execute();
    const report = {
      codes: codes.affected ?? 0,
      refreshTokens: refreshTokens.affected ?? 0,
      sessions: sessions.affected ?? 0,
      revocations: revocations.affected ?? 0,
      mfa: (challenges.affected ?? 0) + (deadBackupCodes.affected ?? 0),
    };
    return {
      ...report,
      total: report.codes + report.refreshTokens + report.sessions + report.revocations + report.mfa,
    };
  }

  // ---- helpers -----------------------------------------------------------------------------

  private table(repository: Repository<ObjectLiteral>): string {
    return this.dataSource.driver.escape(repository.metadata.tableName);
  }

  /**
   * A subquery that finds the enrolment whose current batch is that of the backup code `codes`
   * (a table name or alias); with `activeOnly`, only an active one (parameter `:yes` = true).
   */
  private currentBatchOf(codes: string, activeOnly = false): string {
    const active = activeOnly ? ' AND t.active = :yes' : '';
    return (
      `SELECT 1 FROM ${this.table(this.totp)} t ` +
      `WHERE t.user_id = ${codes}.user_id AND t.backup_batch = ${codes}.batch${active}`
    );
  }

  /** The id in the primary column's own type, or undefined when it cannot be one (never a 500). */
  private parseId(id: string): string | number | undefined {
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) return undefined;
    const type = this.primary.type;
    if (type === Number || type === 'int' || type === 'integer' || type === 'smallint') {
      // Out-of-range numbers make PostgreSQL throw; they cannot be an existing id anyway.
      const max = type === 'smallint' ? 32_767 : 2_147_483_647;
      return /^\d{1,10}$/.test(id) && Number(id) <= max ? Number(id) : undefined;
    }
    if (type === 'bigint') return /^\d{1,19}$/.test(id) && BigInt(id) <= 9_223_372_036_854_775_807n ? id : undefined;
    if (type === 'uuid' || this.primary.generationStrategy === 'uuid') return UUID.test(id) ? id : undefined;
    return id;
  }

  private toUser(entity: TUser): StoredUser<TUser> {
    const record = entity as unknown as ObjectLiteral;
    return {
      id: String(record[this.primary.propertyName]),
      email: entity.email,
      isVerified: Boolean(entity.isVerified),
      entity,
    };
  }
}
