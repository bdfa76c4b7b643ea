import { randomBytes } from 'node:crypto';
import { DataSource, type DataSourceOptions, type EntitySchema } from 'typeorm';

/** A database the suite can run against. */
export type Backend = 'sqlite' | 'postgres' | 'mariadb';

const POSTGRES_URL = process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const MARIADB_URL = process.env['TEST_MARIADB_URL'] ?? 'mysql://root@127.0.0.1:3306/test';

/** Backends chosen by scripts/test.mjs after probing (SQLite always). */
export function enabledBackends(): Backend[] {
  const list = (process.env['OTP_TEST_BACKENDS'] ?? 'sqlite').split(',').map((b) => b.trim());
  return list.filter((b): b is Backend => b === 'sqlite' || b === 'postgres' || b === 'mariadb');
}

/** Backends that run several connections at once (where concurrency tests mean something). */
export function serverBackends(): Backend[] {
  return enabledBackends().filter((b) => b !== 'sqlite');
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type Entities = (Function | EntitySchema)[];

/** A fresh, empty database of the given kind, dropped again by `drop()`. */
export interface TestDatabase {
  readonly dataSource: DataSource;
  /**
   * A connection URL of the created database, for code that opens its own connections (e.g.
   * the sample app's `DATABASE_URL`). Undefined for SQLite: its in-memory database is private
   * to `dataSource`.
   */
  readonly url?: string;
  drop(): Promise<void>;
}

function serverOptions(url: string, database: string): { type: 'postgres' | 'mysql'; url: string } {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return { type: url.startsWith('postgres') ? 'postgres' : 'mysql', url: parsed.toString() };
}

/** Creates a database of its own for one test file, so files can run in parallel. */
export async function createTestDatabase(backend: Backend, entities: Entities): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities, synchronize: true });
    await dataSource.initialize();
    return { dataSource, drop: () => dataSource.destroy() };
  }
  const adminUrl = backend === 'postgres' ? POSTGRES_URL : MARIADB_URL;
  const name = `otp_test_${randomBytes(6).toString('hex')}`;
  const admin = new DataSource({
    ...serverOptions(adminUrl, new URL(adminUrl).pathname.slice(1)),
  } as DataSourceOptions);
  await admin.initialize();
  await admin.query(`CREATE DATABASE ${name}`);
  const options = serverOptions(adminUrl, name);
  const dataSource = new DataSource({
    ...options,
    entities,
    synchronize: true,
    // A pool large enough that 50+ parallel requests really run in parallel.
    extra: backend === 'postgres' ? { max: 20 } : { connectionLimit: 20 },
  } as DataSourceOptions);
  await dataSource.initialize();
  return {
    dataSource,
    url: options.url,
    drop: async () => {
      await dataSource.destroy();
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.destroy();
    },
  };
}
