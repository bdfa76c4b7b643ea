/**
 * The server side of the guard benchmark, run as its own process so the load generator does not
 * share its event loop: one Nest app with the same handler behind no guard, OtpAuthGuard,
 * VerifiedUserGuard and the stock @nestjs/passport + passport-jwt recipe. Prints one JSON line
 * `{port, otpToken, passportToken}` when ready.
 */
import 'reflect-metadata';
import { Controller, Get, Injectable, Module, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import jwt from 'jsonwebtoken';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { DataSource } from 'typeorm';
import { OtpAuthGuard, OtpAuthModule, OtpAuthService, VerifiedUserGuard, isMfaChallenge } from 'nestjs-otp-auth';
import { OtpBaseUser, otpAuthEntities, TypeOrmOtpAuthStore } from 'nestjs-otp-auth/typeorm';
import { Entity, PrimaryGeneratedColumn } from 'typeorm';

const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const PASSPORT_SECRET = 'passport-recipe-secret-0123456789abcdef';

@Entity('users')
class BenchUser extends OtpBaseUser {
  @PrimaryGeneratedColumn()
  id!: number;
}

/** The recipe from the NestJS docs: a string secret, validate() returning the payload. */
@Injectable()
class RecipeJwtStrategy extends PassportStrategy(Strategy, 'recipe-jwt') {
  constructor() {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      ignoreExpiration: false,
      secretOrKey: PASSPORT_SECRET,
    });
  }

  validate(payload: { sub: string }): { userId: string } {
    return { userId: payload.sub };
  }
}

@Controller()
class BenchController {
  @Get('bare')
  bare(): { ok: true } {
    return { ok: true };
  }

  @Get('guarded')
  @UseGuards(OtpAuthGuard)
  guarded(): { ok: true } {
    return { ok: true };
  }

  @Get('verified')
  @UseGuards(VerifiedUserGuard)
  verified(): { ok: true } {
    return { ok: true };
  }

  @Get('passport')
  @UseGuards(AuthGuard('recipe-jwt'))
  passport(): { ok: true } {
    return { ok: true };
  }
}

function dataSourceFor(backend: string): DataSource {
  const entities = [BenchUser, ...otpAuthEntities];
  if (backend === 'postgres')
    return new DataSource({ type: 'postgres', url: process.env['BENCH_POSTGRES_URL'], entities, synchronize: true });
  if (backend === 'mariadb')
    return new DataSource({ type: 'mysql', url: process.env['BENCH_MARIADB_URL'], entities, synchronize: true });
  return new DataSource({ type: 'better-sqlite3', database: ':memory:', entities, synchronize: true });
}

async function main(): Promise<void> {
  const backend = process.argv[2] ?? 'sqlite';
  const dataSource = await dataSourceFor(backend).initialize();

  @Module({
    imports: [
      PassportModule,
      OtpAuthModule.forRoot({
        secret: SECRET,
        store: new TypeOrmOtpAuthStore(dataSource, { userEntity: BenchUser }),
        sendOtp: async () => undefined,
        rateLimits: { enabled: false },
      }),
    ],
    controllers: [BenchController],
    providers: [RecipeJwtStrategy],
  })
  class BenchModule {}

  const app = await NestFactory.create(BenchModule, { logger: ['fatal'] });
  await app.listen(0, '127.0.0.1');
  const auth = app.get(OtpAuthService);
  const store = new TypeOrmOtpAuthStore(dataSource, { userEntity: BenchUser });
  await store.init();
  const user = (await store.markUserVerified((await store.createOrGetUser(`bench-${Date.now()}@example.com`))!.id))!;
  const session = await auth.signInWithFirstFactor(user, ['pwd']);
  if (isMfaChallenge(session)) throw new Error('unexpected MFA challenge');
  const passportToken = jwt.sign({ sub: user.id }, PASSPORT_SECRET, { expiresIn: 3600 });
  const { port } = app.getHttpServer().address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port, otpToken: session.accessToken, passportToken })}\n`);
  process.on('SIGTERM', () => {
    void app
      .close()
      .then(() => dataSource.destroy())
      .then(() => process.exit(0));
  });
}

await main();
