/**
 * The server side of the Better Auth comparison: a Nest app on Express, like login-server, with
 * Better Auth's node handler and its emailOTP plugin mounted under /api/auth (the documented
 * Express setup), on the same kind of database with a pool of the same size. Better Auth's own
 * migrations create its tables; its rate limiter is off (login-server keeps ours on, at limits the
 * load never reaches). The code passed to sendVerificationOTP is added to the answer of
 * send-verification-otp as `dev_code`, as our developer mode does, so that a sign-in is two
 * requests on both sides. Prints `{port}` when ready.
 */
import 'reflect-metadata';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  betterAuth,
  createAuthMiddleware,
  createMysqlPool,
  emailOTP,
  getMigrations,
  PostgresPool,
  SqliteDatabase,
  toNodeHandler,
} from '../better-auth/modules.mjs';
import { freePort } from './ports.js';

const SEND_PATH = '/email-otp/send-verification-otp';

/**
 * What the after-hook uses of Better Auth's hook context. Spelled out (and the other callback's
 * parameter too) so this file type-checks where bench/better-auth is not installed and its types
 * are missing (see modules.d.mts); where they are, the real context must fit this shape.
 */
interface AfterHookContext {
  path?: string;
  body: unknown;
  json: (body: { success: true; dev_code: string }) => unknown;
}

function databaseFor(backend: string): SqliteDatabase.Database | PostgresPool | ReturnType<typeof createMysqlPool> {
  if (backend === 'postgres') return new PostgresPool({ connectionString: process.env['BENCH_POSTGRES_URL'], max: 20 });
  if (backend === 'mariadb') return createMysqlPool({ uri: process.env['BENCH_MARIADB_URL'], connectionLimit: 20 });
  return new SqliteDatabase(':memory:');
}

@Module({})
class BetterAuthBenchModule {}

const backend = process.argv[2] ?? 'sqlite';
const port = await freePort(); // Better Auth wants its base URL before the app listens
const database = databaseFor(backend);
// Codes handed to the "mailer", until the after-hook moves them into the answer.
const sentCodes = new Map<string, string>();

const auth = betterAuth({
  baseURL: `http://127.0.0.1:${port}`,
  secret: 'bench-secret-0123456789abcdef0123456789abcdef',
  database,
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { level: 'error' },
  plugins: [
    emailOTP({
      sendVerificationOTP: ({ email, otp }: { email: string; otp: string }) => {
        sentCodes.set(email, otp);
        return Promise.resolve();
      },
    }),
  ],
  hooks: {
    after: createAuthMiddleware(async (ctx: AfterHookContext) => {
      if (ctx.path !== SEND_PATH) return;
      // The plugin lower-cases the address before it calls sendVerificationOTP.
      const email = (ctx.body as { email: string }).email.toLowerCase();
      const code = sentCodes.get(email);
      // No code: the endpoint refused (its error answer stands).
      if (code === undefined) return;
      sentCodes.delete(email);
      return ctx.json({ success: true, dev_code: code });
    }),
  },
});
await (await getMigrations(auth.options)).runMigrations();

const handle = toNodeHandler(auth);
// Requests still being handled: when a run ends, the load generator drops its connections but
// their handlers go on, and must finish before the database pool closes.
const inFlight = new Set<Promise<void>>();
// No body parser: Better Auth reads the request body itself (its Express guide mounts it first).
const app = await NestFactory.create(BetterAuthBenchModule, { logger: ['fatal'], bodyParser: false });
app.getHttpAdapter().all('/api/auth/*splat', (req: IncomingMessage, res: ServerResponse) => {
  const handled = handle(req, res).finally(() => inFlight.delete(handled));
  inFlight.add(handled);
  return handled;
});
await app.listen(port, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => {
  void app.close().then(async () => {
    await Promise.allSettled(inFlight);
    if ('end' in database) await database.end();
    else database.close();
    process.exit(0);
  });
});
