import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import mongoose, { type Model } from 'mongoose';
import {
  createOtpUserSchema,
  MongooseOtpAuthStore,
  withOtpUserFields,
  type OtpUser,
  type OtpUserFields,
} from 'nestjs-otp-auth/mongoose';
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
    // Users whose `_id` is a UUID, a number or a string: each must round-trip through `sub`.
    let nextNumber = Date.now();
    const withId = (name: string, id: Record<string, unknown>) =>
      new MongooseOtpAuthStore({
        connection,
        userModel: connection.model(
          name,
          withOtpUserFields(new mongoose.Schema({ _id: id })),
        ) as unknown as Model<OtpUserFields>,
        collectionPrefix: `${name.toLowerCase()}_`,
      });
    return {
      // The default store builds TTL indexes; every expiry the suite writes lies at least an hour
      // ahead of the server's clock, so MongoDB deletes nothing while the suite runs.
      store: new MongooseOtpAuthStore({ connection, userModel: users }),
      idPattern: /^[0-9a-f]{24}$/,
      invalidIds: ['42', 'abc', '0'.repeat(23), 'g'.repeat(24), '507F1F77BCF86CD799439011'],
      idVariants: [
        {
          label: 'UUID _id',
          store: withId('UuidUser', { type: mongoose.Schema.Types.UUID, default: () => randomUUID() }),
          idPattern: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
          foreignIds: ['42', 'not-a-uuid', '507f1f77bcf86cd799439011', randomUUID().toUpperCase()],
        },
        {
          label: 'Number _id',
          store: withId('NumberUser', { type: Number, default: () => (nextNumber += 1) }),
          idPattern: /^\d+$/,
          foreignIds: ['abc', '1.5', '007', '507f1f77bcf86cd799439011', '1'],
        },
        {
          label: 'String _id',
          store: withId('StringUser', { type: String, default: () => `u-${randomUUID()}` }),
          idPattern: /^u-[0-9a-f-]{36}$/,
          foreignIds: ['u-missing', '42'],
        },
      ],
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
