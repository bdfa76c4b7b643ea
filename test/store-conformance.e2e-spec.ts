import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { createOtpUserSchema, MongooseOtpAuthStore, type OtpUser } from 'nestjs-otp-auth/mongoose';
import { describeStoreConformance } from 'nestjs-otp-auth/testing';
import { OtpBaseUser, otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { createTestDatabase, enabledBackends } from './support/databases.js';
import { TestUser } from './support/test-user.entity.js';

/**
 * The one place store behaviour is tested: the conformance suite of `nestjs-otp-auth/testing`,
 * run against every store this machine can reach.
 */

@Entity('uuid_users')
class UuidUser extends OtpBaseUser {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 20, default: 'free' })
  plan!: string;
}

for (const backend of enabledBackends()) {
  describeStoreConformance(`TypeOrmOtpAuthStore on ${backend}`, async () => {
    const db = await createTestDatabase(backend, [TestUser, UuidUser, ...otpAuthEntities]);
    return {
      store: new TypeOrmOtpAuthStore(db.dataSource, { userEntity: TestUser }),
      idPattern: /^\d+$/,
      invalidIds: ['999999', 'abc', '1.5', '-1', '99999999999', '2147483648', '0x10', ' 1'],
      idVariants: [
        {
          label: 'uuid primary keys',
          store: new TypeOrmOtpAuthStore(db.dataSource, { userEntity: UuidUser }),
          idPattern: /^[0-9a-f-]{36}$/i,
          foreignIds: ['42', 'not-a-uuid', '00000000-0000-4000-8000-00000000000g'],
        },
      ],
      close: () => db.drop(),
    };
  });
}

const mongoUri = process.env['MONGODB_URI'] ?? process.env['TEST_MONGODB_URI'];
if (mongoUri) {
  describeStoreConformance('MongooseOtpAuthStore on MongoDB', async () => {
    const connection = await mongoose
      .createConnection(mongoUri, { dbName: `otp_test_${randomBytes(6).toString('hex')}` })
      .asPromise();
    const users = connection.model<OtpUser>('User', createOtpUserSchema({ plan: { type: String, default: 'free' } }));
    return {
      // TTL indexes delete by the server's clock; the suite moves time itself, so they stay off here.
      store: new MongooseOtpAuthStore({ connection, userModel: users }),
      idPattern: /^[0-9a-f]{24}$/,
      invalidIds: ['42', 'abc', '0'.repeat(23), 'g'.repeat(24), '507F1F77BCF86CD799439011'],
      close: async () => {
        await connection.dropDatabase();
        await connection.close();
      },
    };
  });
} else {
  console.warn(
    'store conformance: MongooseOtpAuthStore NOT TESTED: no MONGODB_URI (or TEST_MONGODB_URI) is set and no MongoDB ' +
      'server can run on this machine. Run `docker compose up -d mongo` and set MONGODB_URI=mongodb://127.0.0.1:27017 to test it.',
  );
}
