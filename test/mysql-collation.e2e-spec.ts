import { Logger } from '@nestjs/common';
import { otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { createTestDatabase, enabledBackends, type TestDatabase } from './support/databases.js';
import { capturedLogs, CapturingLogger } from './support/log-capture.js';
import { TestUser } from './support/test-user.entity.js';

const mariadb = enabledBackends().includes('mariadb');
if (!mariadb) console.warn('MySQL email collation: NOT TESTED (MariaDB is not among the backends under test).');

// MariaDB's default collation is accent- and case-insensitive, so a look-alike address can hold
// the unique slot of the real one. The store warns at startup and says how to fix it.
(mariadb ? describe : describe.skip)('users.email collation on MariaDB', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    Logger.overrideLogger(new CapturingLogger());
    database = await createTestDatabase('mariadb', [TestUser, ...otpAuthEntities]);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('warns about an accent-insensitive collation, and a binary one lets both addresses sign up', async () => {
    const store = new TypeOrmOtpAuthStore(database.dataSource, { userEntity: TestUser });
    await store.init();
    const warning = capturedLogs.find((line) => line.includes('look-alike'));
    expect(warning).toContain('COLLATE utf8mb4_bin');
    // Under the default collation the look-alike holds the real address's slot.
    expect(await store.createOrGetUser('kevin@exámple.com')).not.toBeNull();
    expect(await store.createOrGetUser('kevin@example.com')).toBeNull();

    await database.dataSource.query('DELETE FROM users');
    await database.dataSource.query(
      'ALTER TABLE users MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL',
    );
    const warningsBefore = capturedLogs.filter((line) => line.includes('look-alike')).length;
    await store.init();
    expect(capturedLogs.filter((line) => line.includes('look-alike'))).toHaveLength(warningsBefore);
    const lookAlike = await store.createOrGetUser('kevin@exámple.com');
    const real = await store.createOrGetUser('kevin@example.com');
    expect(real?.email).toBe('kevin@example.com');
    expect(real?.id).not.toBe(lookAlike?.id);
  });
});
