import { Table, TableIndex, type DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';

/** The portable column types the module's tables use; each driver names them its own way. */
type PortableType = 'varchar' | 'integer' | 'bigint' | 'boolean';

interface ColumnSnapshot {
  readonly name: string;
  readonly type: PortableType;
  readonly length?: number;
  readonly nullable?: boolean;
  readonly default?: number;
  readonly primary?: boolean;
}

interface TableSnapshot {
  /** The entity class name, which the naming strategy receives next to the table name. */
  readonly entity: string;
  readonly name: string;
  readonly columns: readonly ColumnSnapshot[];
  /** Plain (non-unique) single-column indexes; TypeORM names them by the naming strategy. */
  readonly indexes: readonly string[];
}

const key = (name: string, length: number): ColumnSnapshot => ({ name, type: 'varchar', length, primary: true });
const text = (name: string, length: number, nullable = false): ColumnSnapshot => ({
  name,
  type: 'varchar',
  length,
  nullable,
});
const epoch = (name: string, nullable = false): ColumnSnapshot => ({ name, type: 'bigint', nullable });
const counter = (name: string): ColumnSnapshot => ({ name, type: 'integer', default: 0 });

/**
 * The schema of `otpAuthEntities` as of this migration. A snapshot, not read from the entities:
 * a migration must keep creating what it created when it was written, whatever later versions
 * change (they ship migrations of their own).
 */
const TABLES_1733300000000: readonly TableSnapshot[] = [
  {
    entity: 'OtpCodeEntity',
    name: 'otp_codes',
    columns: [
      key('address_key', 64),
      key('purpose', 32),
      text('code_hash', 64, true),
      { name: 'generation', type: 'integer' },
      epoch('expires_at'),
      counter('attempts'),
      epoch('sent_at'),
      counter('failure_count'),
      epoch('failure_window_start', true),
    ],
    indexes: ['expires_at'],
  },
  {
    entity: 'OtpSessionEntity',
    name: 'otp_sessions',
    columns: [key('id', 36), text('user_id', 128), text('amr', 64), epoch('created_at'), epoch('revoked_at', true)],
    indexes: ['user_id'],
  },
  {
    entity: 'OtpRefreshTokenEntity',
    name: 'otp_refresh_tokens',
    columns: [
      key('token_hash', 64),
      text('session_id', 36),
      text('user_id', 128),
      text('parent_hash', 64, true),
      epoch('created_at'),
      epoch('expires_at'),
    ],
    indexes: ['session_id', 'expires_at'],
  },
  {
    entity: 'OtpRevocationEntity',
    name: 'otp_revocations',
    columns: [key('revocation_key', 80), epoch('expires_at'), epoch('created_at')],
    indexes: ['expires_at', 'created_at'],
  },
  {
    entity: 'OtpTotpEntity',
    name: 'otp_totp',
    columns: [
      key('user_id', 128),
      text('encrypted_secret', 255),
      text('key_id', 16),
      { name: 'active', type: 'boolean' },
      epoch('last_step', true),
      text('backup_batch', 36, true),
      counter('failure_count'),
      epoch('failure_window_start', true),
      epoch('created_at'),
      epoch('confirmed_at', true),
    ],
    indexes: [],
  },
  {
    entity: 'OtpBackupCodeEntity',
    name: 'otp_backup_codes',
    columns: [
      key('id', 36),
      text('user_id', 128),
      text('batch', 36),
      text('salt', 64),
      text('hash', 64),
      epoch('used_at', true),
    ],
    indexes: ['user_id'],
  },
  {
    entity: 'OtpMfaChallengeEntity',
    name: 'otp_mfa_challenges',
    columns: [
      key('id', 64),
      text('user_id', 128),
      text('amr', 64),
      counter('attempts'),
      epoch('expires_at'),
      epoch('consumed_at', true),
    ],
    indexes: ['expires_at'],
  },
];

/**
 * The table's path as the DataSource's entity metadata computes it (naming strategy,
 * `entityPrefix`, `schema`), so the migration lands where `synchronize` would, also on a
 * DataSource that lists only migrations (the CLI's).
 */
function tablePath(dataSource: DataSource, snapshot: TableSnapshot): string {
  const { namingStrategy, options, driver } = dataSource;
  const name = namingStrategy.tableName(snapshot.entity, snapshot.name);
  const prefixed = options.entityPrefix ? namingStrategy.prefixTableName(options.entityPrefix, name) : name;
  const schema = 'schema' in options && typeof options.schema === 'string' ? options.schema : undefined;
  return driver.buildTableName(prefixed, schema);
}

/**
 * The table as `synchronize` builds it: the driver's own type names (`character varying` on
 * PostgreSQL, `int`/`tinyint` on MySQL) and the primary key and index names left to the
 * naming strategy.
 */
function toTable(dataSource: DataSource, snapshot: TableSnapshot): Table {
  const { driver } = dataSource;
  return new Table({
    name: tablePath(dataSource, snapshot),
    columns: snapshot.columns.map((column) => {
      const length = column.length === undefined ? '' : String(column.length);
      return {
        name: column.name,
        type: driver.normalizeType({ type: column.type, length }),
        length,
        isNullable: column.nullable ?? false,
        isPrimary: column.primary ?? false,
        // A bare `0` where synchronize writes `'0'` on PostgreSQL/MySQL: the same stored default.
        ...(column.default === undefined ? {} : { default: String(column.default) }),
      };
    }),
    indices: snapshot.indexes.map((column) => new TableIndex({ columnNames: [column] })),
  });
}

/**
 * Creates the module's tables (`otpAuthEntities`) on PostgreSQL, MySQL/MariaDB and SQLite, exactly
 * as `synchronize` does: same types, nullability, defaults, primary keys and index names. It does
 * not touch your user table. A table that already exists (made by `synchronize` before you
 * switched to migrations) is left as it is.
 *
 * ```ts
 * new DataSource({ ..., entities: [User, ...otpAuthEntities], migrations: [...otpAuthMigrations, ...yours], migrationsRun: true });
 * ```
 */
export class OtpAuthMigration1733300000000 implements MigrationInterface {
  /** Set explicitly: bundlers and minifiers rename classes, and TypeORM records this name. */
  readonly name = 'OtpAuthMigration1733300000000';

  /** Creates the tables and their indexes. */
  async up(queryRunner: QueryRunner): Promise<void> {
    for (const snapshot of TABLES_1733300000000) {
      // If not exists; no foreign keys (synchronize makes none: a refresh token is written before
      // its session); indexes too.
      await queryRunner.createTable(toTable(queryRunner.dataSource, snapshot), true, false, true);
    }
  }

  /** Drops the tables (and their rows) again. */
  async down(queryRunner: QueryRunner): Promise<void> {
    for (const snapshot of [...TABLES_1733300000000].reverse()) {
      await queryRunner.dropTable(tablePath(queryRunner.dataSource, snapshot), true);
    }
  }
}

/**
 * The module's migrations, oldest first; put them in your DataSource's `migrations` next to your
 * own. Later versions append theirs here.
 */
export const otpAuthMigrations = [OtpAuthMigration1733300000000] as const;
