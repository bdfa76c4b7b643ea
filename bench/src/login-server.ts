/**
 * The server side of the login, refresh, TOTP and memory benchmarks: the module's routes on one
 * database, with developer mode (codes are returned, so the load generator can verify them;
 * everything else is the production path) and request limits on, at limits the load never
 * reaches, so counters are created and bounded as in production. Prints `{port}` when ready.
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { OtpAuthModule } from 'nestjs-otp-auth';
import { OtpBaseUser, otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';

@Entity('users')
class BenchUser extends OtpBaseUser {
  @PrimaryGeneratedColumn()
  id!: number;
}

@Controller('bench')
class MemoryController {
  @Get('memory')
  memory(): { rss: number; heapUsed: number } {
    // After a full collection heapUsed is what is really retained; RSS also holds the
    // allocator's slack, which V8 keeps after a burst and reuses.
    (globalThis as { gc?: () => void }).gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heapUsed };
  }
}

function dataSourceFor(backend: string): DataSource {
  const entities = [BenchUser, ...otpAuthEntities];
  const pool = { max: 20 };
  if (backend === 'postgres')
    return new DataSource({
      type: 'postgres',
      url: process.env['BENCH_POSTGRES_URL'],
      entities,
      synchronize: true,
      extra: pool,
    });
  if (backend === 'mariadb')
    return new DataSource({
      type: 'mysql',
      url: process.env['BENCH_MARIADB_URL'],
      entities,
      synchronize: true,
      extra: { connectionLimit: 20 },
    });
  return new DataSource({ type: 'better-sqlite3', database: ':memory:', entities, synchronize: true });
}

const backend = process.argv[2] ?? 'sqlite';
const dataSource = await dataSourceFor(backend).initialize();
const huge = { limit: 10_000_000, window: 600 };

@Module({
  imports: [
    OtpAuthModule.forRoot({
      secret: 'bench-secret-0123456789abcdef0123456789abcdef',
      store: new TypeOrmOtpAuthStore(dataSource, { userEntity: BenchUser }),
      developerMode: true,
      refreshTokenDelivery: 'body',
      // The TOTP scenario signs in users who signed in moments earlier to enrol. The cooldown
      // check still runs on every request-otp; for the other scenarios' new addresses it never
      // fired anyway.
      resendCooldown: 0,
      rateLimits: {
        send: { perEmail: huge, perEmailDaily: huge, perIp: huge, global: huge },
        verify: { perEmail: huge, perIp: huge, global: huge },
      },
    }),
  ],
  controllers: [MemoryController],
})
class LoginBenchModule {}

const app = await NestFactory.create(LoginBenchModule, { logger: ['fatal'] });
await app.listen(0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ port: (app.getHttpServer().address() as { port: number }).port })}\n`);
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => dataSource.destroy())
    .then(() => process.exit(0));
});
