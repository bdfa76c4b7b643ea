import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { signWebhookBody, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from 'nestjs-otp-auth';
import { otpAuthEntities } from 'nestjs-otp-auth/typeorm';
import { createApp } from '../../apps/sample/src/bootstrap.js';
import { loadConfig, type Environment } from '../../apps/sample/src/config.js';
import { User } from '../../apps/sample/src/user.entity.js';
import { createTestDatabase, type Backend, type TestDatabase } from './databases.js';
import { assertNoLeakedSecrets, CapturingLogger, recordSecret } from './log-capture.js';
import { tapSecrets, type Platform } from './test-app.js';

/**
 * The real sample app, black-box: production delivery (signed webhooks to a local receiver, so
 * no developer mode), logging at debug into the leak check, on a real database.
 */
export interface SampleHarness {
  readonly app: INestApplication;
  /** supertest against the app (responses feed the leak check). */
  http(): ReturnType<typeof request>;
  /** The base URL when started with `listen: true`. */
  readonly url: string | undefined;
  /** The last code delivered to an address. */
  lastCode(email: string): string;
  /** How many codes were delivered to an address. */
  deliveredTo(email: string): number;
  readonly database: TestDatabase | undefined;
  close(): Promise<void>;
}

export interface SampleHarnessOptions {
  backend: Backend;
  platform?: Platform;
  /** Extra environment for the sample's `loadConfig`. */
  env?: Environment;
  /** Use this `DATABASE_URL` (e.g. through a proxy) instead of the backend's own test database. */
  databaseUrl?: (database: TestDatabase) => string;
  /** Listen on a loopback port (for load tools); otherwise supertest only. */
  listen?: boolean;
  /** The webhook receiver answers after this long (ms, or drawn per message), like a real mail gateway. */
  deliveryDelayMs?: number | (() => number);
}

/** A local webhook receiver that checks the signature and keeps the codes. */
async function startCodeReceiver(
  secret: string,
  delayMs: number | (() => number),
): Promise<{ server: Server; url: string; codes: Map<string, string[]> }> {
  const codes = new Map<string, string[]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const delay = typeof delayMs === 'function' ? delayMs() : delayMs;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const body = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(req.headers[WEBHOOK_TIMESTAMP_HEADER]);
      if (req.headers[WEBHOOK_SIGNATURE_HEADER] !== signWebhookBody(secret, timestamp, body)) {
        res.statusCode = 401;
        res.end();
        return;
      }
      const { email, code } = JSON.parse(body) as { email: string; code: string };
      recordSecret(code);
      codes.set(email, [...(codes.get(email) ?? []), code]);
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/otp`, codes };
}

/** Starts the sample app on a fresh database of `backend`, as a deployment would run it. */
export async function startSample(options: SampleHarnessOptions): Promise<SampleHarness> {
  const webhookSecret = randomBytes(16).toString('hex');
  const receiver = await startCodeReceiver(webhookSecret, options.deliveryDelayMs ?? 0);
  let database: TestDatabase | undefined;
  let app: INestApplication | undefined;
  try {
    database =
      options.backend === 'sqlite' ? undefined : await createTestDatabase(options.backend, [User, ...otpAuthEntities]);
    const databaseUrl = database ? (options.databaseUrl?.(database) ?? database.url!) : 'sqlite::memory:';
    const config = loadConfig({
      DATABASE_URL: databaseUrl,
      HTTP_PLATFORM: options.platform ?? 'express',
      COOKIE_SECURE: 'false',
      LOG_LEVEL: 'verbose',
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
      OTP_DELIVERY: 'webhook',
      OTP_WEBHOOK_URL: receiver.url,
      OTP_WEBHOOK_SECRET: webhookSecret,
      ...options.env,
    });
    app = await createApp(config, new CapturingLogger());
    let url: string | undefined;
    if (options.listen) {
      await app.listen(0, '127.0.0.1');
      url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    } else {
      await app.init();
      if (config.platform === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
    }
    const server: unknown = app.getHttpServer();
    const started = app;
    const startedDatabase = database;
    return {
      app: started,
      url,
      http: () => tapSecrets(request(server as Parameters<typeof request>[0])),
      lastCode(email) {
        const code = receiver.codes.get(email)?.at(-1);
        if (code === undefined) throw new Error(`no code was delivered to ${email}`);
        return code;
      },
      deliveredTo: (email) => receiver.codes.get(email)?.length ?? 0,
      database: startedDatabase,
      close: async () => {
        await started.close();
        receiver.server.closeAllConnections();
        await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
        await startedDatabase?.drop();
        assertNoLeakedSecrets();
      },
    };
  } catch (error) {
    await app?.close();
    receiver.server.close();
    await database?.drop();
    throw error;
  }
}
