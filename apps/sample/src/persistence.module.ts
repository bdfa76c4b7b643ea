import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Global, Module, type DynamicModule, type Provider } from '@nestjs/common';
import { getConnectionToken, getModelToken, MongooseModule } from '@nestjs/mongoose';
import { getDataSourceToken, TypeOrmModule, type TypeOrmModuleOptions } from '@nestjs/typeorm';
import type { Connection, Model } from 'mongoose';
import type { DataSource } from 'typeorm';
import type { OtpAuthStore } from 'nestjs-otp-auth';
import { MongooseOtpAuthStore } from 'nestjs-otp-auth/mongoose';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import type { DatabaseConfig } from './config.js';
import { User } from './user.entity.js';
import { MongoUser, MongoUserSchema } from './user.schema.js';

/** Injection token of the store the sample's `DATABASE_URL` selects. */
export const SAMPLE_STORE = Symbol('SAMPLE_STORE');
/** Injection token of `(email) => phone number | null`, for SMS delivery. */
export const SAMPLE_PHONE_LOOKUP = Symbol('SAMPLE_PHONE_LOOKUP');
/** Injection token of a database round trip, for the readiness check. */
export const SAMPLE_DATABASE_PING = Symbol('SAMPLE_DATABASE_PING');

/** `(email) => phone`, the users' phone numbers for SMS delivery. */
export type PhoneLookup = (email: string) => Promise<string | null>;

/** TypeORM connection options for a SQL `DATABASE_URL`. */
function typeOrmOptions(
  database: Exclude<DatabaseConfig, { type: 'mongodb' }>,
  timeoutSeconds: number,
  synchronize: boolean,
): TypeOrmModuleOptions {
  const common = {
    entities: [User, ...otpAuthEntities],
    // Creates and alters tables to match the entities (DATABASE_SYNCHRONIZE): convenient for a
    // sample, unsafe for production data, where migrations should own the schema.
    synchronize,
  };
  if (database.type === 'better-sqlite3') {
    // SQLite creates the file but not its directory.
    if (database.database !== ':memory:') mkdirSync(dirname(database.database), { recursive: true });
    return { ...common, type: 'better-sqlite3', database: database.database };
  }
  const timeout = timeoutSeconds * 1000;
  // Bounded waits: with the database unreachable (even silently, packets dropped), a request
  // fails after `timeout` with 503 instead of hanging. pg has a client-side query timeout;
  // mysql2 only a connect timeout.
  return database.type === 'postgres'
    ? {
        ...common,
        type: 'postgres',
        url: database.url,
        extra: { connectionTimeoutMillis: timeout, query_timeout: timeout },
      }
    : { ...common, type: 'mysql', url: database.url, extra: { connectTimeout: timeout } };
}

/**
 * Phone numbers through the store's exact lookup. A query of its own (`findOne({ where: { email } })`)
 * would compare under the column's collation, and on MySQL/MariaDB `kévin@example.com` and
 * `kevin@exámple.com` would reach the phone of `kevin@example.com`.
 */
const phoneLookupProvider: Provider = {
  provide: SAMPLE_PHONE_LOOKUP,
  inject: [SAMPLE_STORE],
  useFactory:
    (store: OtpAuthStore): PhoneLookup =>
    async (email) => {
      const user = (await store.findUserByEmail(email))?.entity as { phone?: unknown } | undefined;
      return typeof user?.phone === 'string' && user.phone !== '' ? user.phone : null;
    },
};

function sqlProviders(): Provider[] {
  const inject = [getDataSourceToken()];
  return [
    {
      provide: SAMPLE_STORE,
      inject,
      useFactory: (dataSource: DataSource): OtpAuthStore => new TypeOrmOtpAuthStore(dataSource, { userEntity: User }),
    },
    {
      provide: SAMPLE_DATABASE_PING,
      inject,
      useFactory: (dataSource: DataSource) => () => dataSource.query('SELECT 1'),
    },
  ];
}

function mongoProviders(): Provider[] {
  const inject = [getConnectionToken(), getModelToken(MongoUser.name)];
  return [
    {
      provide: SAMPLE_STORE,
      inject,
      useFactory: (connection: Connection, userModel: Model<MongoUser>): OtpAuthStore =>
        new MongooseOtpAuthStore({ connection, userModel }),
    },
    {
      provide: SAMPLE_DATABASE_PING,
      inject,
      useFactory: (connection: Connection) => async () => {
        if (!connection.db) throw new Error('not connected');
        await connection.db.admin().ping();
      },
    },
  ];
}

/**
 * The database `DATABASE_URL` names: TypeORM for SQLite, PostgreSQL and MySQL/MariaDB, Mongoose
 * for MongoDB. Exposes the store, a phone lookup and a ping, so nothing else depends on which.
 */
@Global()
@Module({})
export class PersistenceModule {
  static forRoot(database: DatabaseConfig, timeoutSeconds: number, synchronize = true): DynamicModule {
    const mongo = database.type === 'mongodb';
    return {
      module: PersistenceModule,
      imports: mongo
        ? [
            // No socketTimeoutMS: it would also cut long index builds at startup.
            MongooseModule.forRoot(database.url, { serverSelectionTimeoutMS: timeoutSeconds * 1000 }),
            MongooseModule.forFeature([{ name: MongoUser.name, schema: MongoUserSchema }]),
          ]
        : [TypeOrmModule.forRoot(typeOrmOptions(database, timeoutSeconds, synchronize))],
      providers: [...(mongo ? mongoProviders() : sqlProviders()), phoneLookupProvider],
      exports: [SAMPLE_STORE, SAMPLE_PHONE_LOOKUP, SAMPLE_DATABASE_PING],
    };
  }
}
