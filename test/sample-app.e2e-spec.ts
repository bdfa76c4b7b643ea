import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jest } from '@jest/globals';
import { Logger, type INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { CodeOutbox, signWebhookBody, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from 'nestjs-otp-auth';
import { createApp } from '../apps/sample/src/bootstrap.js';
import { loadConfig, type Environment } from '../apps/sample/src/config.js';
import { generateSync } from 'otplib';
import { SMTPServer } from 'smtp-server';
import { DataSource } from 'typeorm';
import { User } from '../apps/sample/src/user.entity.js';
import { createTestDatabase, enabledBackends, type Backend, type TestDatabase } from './support/databases.js';
import { refreshCookie, tapSecrets, type Platform } from './support/test-app.js';
import { decodeQrDataUrl } from './support/totp-helpers.js';
import { CapturingLogger, recordSecret } from './support/log-capture.js';
import { freePort } from './support/network-peers.js';

/**
 * Whether `@fastify/static` (which Swagger UI needs on Fastify) loads in this runtime. Plain Node
 * loads it, but Jest on Node < 24.9 cannot: it require()s the ESM-only `content-disposition`,
 * which Jest's CommonJS loader refuses. The sample app then leaves out the docs on Fastify.
 */
const fastifyStaticLoads = await import('@fastify/static').then(
  () => true,
  () => false,
);

/** Boots the real sample app from environment variables, ready for supertest. */
async function bootSample(env: Environment): Promise<INestApplication> {
  const config = loadConfig({ DATABASE_URL: 'sqlite::memory:', COOKIE_SECURE: 'false', LOG_LEVEL: 'verbose', ...env });
  // Every level goes to the leak check (test/support/log-capture.ts), not to the console.
  const app = await createApp(config, new CapturingLogger());
  await app.init();
  if (config.platform === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return app;
}

/** Signs in through the developer-mode code in the request-otp answer. */
async function devSignIn(app: INestApplication, email: string): Promise<request.Response> {
  const http = () => tapSecrets(request(app.getHttpServer()));
  const requested = await http().post('/auth/request-otp').send({ email }).expect(200);
  expect(requested.body.dev_code).toMatch(/^\d{6}$/);
  return http().post('/auth/verify-otp').send({ email, code: requested.body.dev_code }).expect(200);
}

describe.each(['express', 'fastify'] as Platform[])('sample app on %s (SQLite in memory)', (platform) => {
  let app: INestApplication;
  const http = () => tapSecrets(request(app.getHttpServer()));

  beforeEach(async () => {
    app = await bootSample({ HTTP_PLATFORM: platform, OTP_DEVELOPER_MODE: 'true' });
  });
  afterEach(async () => {
    await app.close();
  });

  it('signs in with the developer code and serves the protected example routes', async () => {
    const email = 'sample@example.com';
    const requested = await http().post('/auth/request-otp').send({ email }).expect(200);
    expect(requested.body).toMatchObject({ expires_in: 600, dev_code: expect.stringMatching(/^\d{6}$/) });

    const verified = await http().post('/auth/verify-otp').send({ email, code: requested.body.dev_code }).expect(200);
    expect(verified.body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
    expect(refreshCookie(verified)).toEqual(expect.any(String));
    const auth = `Bearer ${verified.body.access_token as string}`;

    const protectedRes = await http().get('/protected').set('authorization', auth).expect(200);
    expect(protectedRes.body).toEqual({ user_id: expect.any(String), session_id: expect.any(String) });

    const verifiedOnly = await http().get('/verified-only').set('authorization', auth).expect(200);
    expect(verifiedOnly.body).toEqual({
      message: 'Access granted to verified user',
      user_id: Number(protectedRes.body.user_id),
      email,
    });

    const claims = await http().get('/claims').set('authorization', auth).expect(200);
    expect(claims.body).toEqual({ custom_claims: { display_name: null } });
  });

  it.each(['/protected', '/verified-only', '/claims'])('answers 401 on GET %s without a token', async (path) => {
    await http().get(path).expect(401);
    await http().get(path).set('authorization', 'Bearer not-a-token').expect(401);
  });

  it('rotates the refresh token, and logout ends the session', async () => {
    const signedIn = await devSignIn(app, 'rotate@example.com');
    const first = refreshCookie(signedIn)!;

    const refreshed = await http().post('/auth/refresh').set('cookie', `otp_refresh=${first}`).expect(200);
    const second = refreshCookie(refreshed);
    expect(second).toEqual(expect.any(String));
    expect(second).not.toBe(first);
    expect(refreshed.body.access_token).toEqual(expect.any(String));
    const auth = `Bearer ${refreshed.body.access_token as string}`;
    await http().get('/protected').set('authorization', auth).expect(200);

    await http().post('/auth/logout').set('authorization', auth).set('cookie', `otp_refresh=${second}`).expect(200);
    await http().get('/protected').set('authorization', auth).expect(401);
    await http().post('/auth/refresh').set('cookie', `otp_refresh=${second}`).expect(401);
  });

  it('enrols TOTP under OTP_TOTP_ISSUER and then asks for the second factor at sign-in', async () => {
    await app.close();
    app = await bootSample({
      HTTP_PLATFORM: platform,
      OTP_DEVELOPER_MODE: 'true',
      OTP_TOTP_ISSUER: 'Acme Sample',
      OTP_RESEND_COOLDOWN: '1',
    });
    const email = 'two-factor@example.com';
    const auth = `Bearer ${(await devSignIn(app, email)).body.access_token as string}`;
    const setup = await http().post('/auth/totp/setup').set('authorization', auth).expect(200);
    expect(decodeQrDataUrl(setup.body.qr_code)).toBe(setup.body.otpauth_url);
    expect(setup.body.otpauth_url).toMatch(/^otpauth:\/\/totp\/Acme%20Sample:two-factor%40example\.com\?/);
    const secret = setup.body.secret as string;
    await http()
      .post('/auth/totp/confirm')
      .set('authorization', auth)
      .send({ code: generateSync({ secret }) })
      .expect(200);

    await new Promise((resolve) => setTimeout(resolve, 1100)); // the resend cooldown
    const again = await devSignIn(app, email);
    expect(again.body).toEqual({ mfa_required: true, mfa_token: expect.any(String), expires_in: 300 });
  });

  it('answers /health (liveness) and /health/ready (database ping)', async () => {
    const live = await http().get('/health').expect(200);
    expect(live.body).toMatchObject({ status: 'ok' });
    const ready = await http().get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
  });

  it('starts with REDIS_URL unreachable: sign-in works on local limits, readiness says redis is down without details', async () => {
    await app.close();
    app = await bootSample({ HTTP_PLATFORM: platform, OTP_DEVELOPER_MODE: 'true', REDIS_URL: 'redis://127.0.0.1:1' });
    await devSignIn(app, 'no-redis@example.com');
    const ready = await http().get('/health/ready').expect(503);
    expect(ready.body.error).toEqual({ redis: expect.objectContaining({ status: 'down', message: 'unreachable' }) });
    expect(Object.keys(ready.body.error.redis).sort()).toEqual(['message', 'responseTime', 'status']);
    expect(JSON.stringify(ready.body)).not.toContain('ECONNREFUSED');
  });

  it('writes each security event as one JSON audit line, without codes or tokens', async () => {
    const lines: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'log').mockImplementation(function (this: Logger, message: unknown) {
      if ((this as unknown as { context?: string }).context === 'Audit') lines.push(String(message));
    });
    try {
      const signedIn = await devSignIn(app, 'audited@example.com');
      await http()
        .post('/auth/logout')
        .set('authorization', `Bearer ${signedIn.body.access_token as string}`)
        .expect(200);
      const events = lines.map((line) => JSON.parse(line) as { audit: string; at: string });
      expect(events.map((e) => e.audit)).toEqual(['code.sent', 'code.verified', 'session.created', 'session.revoked']);
      expect(events[0]).toMatchObject({ email: 'audited@example.com', purpose: 'login', at: expect.any(String) });
      expect(lines.join('\n')).not.toContain(signedIn.body.access_token as string);
      expect(lines.join('\n')).not.toContain(refreshCookie(signedIn)!);
    } finally {
      spy.mockRestore();
    }
  });

  if (platform === 'express' || fastifyStaticLoads) {
    it('serves Swagger UI at /docs and the OpenAPI document at /docs-json', async () => {
      const ui = await http().get('/docs').redirects(1).expect(200);
      expect(ui.headers['content-type']).toMatch(/text\/html/);
      const doc = await http().get('/docs-json').expect(200);
      expect(Object.keys(doc.body.paths)).toEqual(
        expect.arrayContaining(['/auth/request-otp', '/auth/verify-otp', '/protected', '/verified-only', '/claims']),
      );
    });
  } else {
    // Swagger UI on Fastify cannot be checked here; see fastifyStaticLoads. Check the fallback instead.
    it('leaves out /docs and /docs-json, still booting, when @fastify/static cannot load (Jest on Node < 24.9)', async () => {
      await http().get('/docs').expect(404);
      await http().get('/docs-json').expect(404);
    });
  }
});

const serverDatabases = enabledBackends().filter((backend) => backend !== 'sqlite');
if (serverDatabases.length === 0) {
  console.warn('sample app on PostgreSQL / MariaDB: NOT TESTED (neither is among the backends under test).');
}
// describe.each refuses an empty table, so the block is skipped (with the line above) instead.
(serverDatabases.length > 0 ? describe.each(serverDatabases) : describe.skip.each(['postgres' as Backend]))(
  'sample app on %s',
  (backend) => {
    let database: TestDatabase;
    let app: INestApplication | undefined;

    beforeEach(async () => {
      database = await createTestDatabase(backend, []);
    });
    afterEach(async () => {
      await app?.close();
      app = undefined;
      await database.drop();
    });

    it('creates its tables and signs in over Express', async () => {
      expect(database.url).toEqual(expect.any(String));
      app = await bootSample({ DATABASE_URL: database.url, OTP_DEVELOPER_MODE: 'true' });
      const signedIn = await devSignIn(app, 'server@example.com');
      const auth = `Bearer ${signedIn.body.access_token as string}`;
      await tapSecrets(request(app.getHttpServer())).get('/verified-only').set('authorization', auth).expect(200);
      const users = await database.dataSource.query('SELECT email FROM users');
      expect(users).toEqual([{ email: 'server@example.com' }]);
    });
  },
);

/** What the webhook receiver got. */
interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

const mongoUri = process.env['MONGODB_URI'] ?? process.env['TEST_MONGODB_URI'];
if (!mongoUri) console.warn('sample app on MongoDB: NOT TESTED (no MONGODB_URI; no MongoDB server can run here).');
(mongoUri ? describe : describe.skip)('sample app on MongoDB', () => {
  it('selects the Mongoose store for DATABASE_URL=mongodb://… and signs in', async () => {
    const url = new URL(mongoUri!);
    url.pathname = `/otp_sample_${randomBytes(4).toString('hex')}`;
    const app = await bootSample({ DATABASE_URL: url.toString(), OTP_DEVELOPER_MODE: 'true' });
    try {
      const signedIn = await devSignIn(app, 'mongo@example.com');
      const me = await tapSecrets(request(app.getHttpServer()))
        .get('/verified-only')
        .set('authorization', `Bearer ${signedIn.body.access_token as string}`)
        .expect(200);
      expect(me.body.user_id).toMatch(/^[0-9a-f]{24}$/);
    } finally {
      await app.close();
    }
  });
});

describe('sample app with webhook delivery', () => {
  const webhookSecret = 'webhook-shared-secret';
  recordSecret(webhookSecret);
  const deliveries: Delivery[] = [];
  let status = 204;
  let server: Server;
  let app: INestApplication;
  const http = () => tapSecrets(request(app.getHttpServer()));

  beforeEach(async () => {
    deliveries.length = 0;
    status = 204;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        recordSecret((JSON.parse(body) as { code?: string }).code);
        deliveries.push({ headers: req.headers, body });
        res.statusCode = status;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    app = await bootSample({
      OTP_DELIVERY: 'webhook',
      OTP_WEBHOOK_URL: `http://127.0.0.1:${port}/otp`,
      OTP_WEBHOOK_SECRET: webhookSecret,
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    });
  });
  afterEach(async () => {
    await app.close();
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  it('POSTs a signed code that signs in, and answers 503 when the receiver fails', async () => {
    const email = 'hook@example.com';
    const requested = await http().post('/auth/request-otp').send({ email }).expect(200);
    expect(requested.body.dev_code).toBeUndefined();
    expect(deliveries).toHaveLength(1);

    const { headers, body } = deliveries[0]!;
    expect(headers['content-type']).toMatch(/application\/json/);
    const timestamp = headers[WEBHOOK_TIMESTAMP_HEADER] as string;
    expect(timestamp).toMatch(/^\d+$/);
    expect(headers[WEBHOOK_SIGNATURE_HEADER]).toBe(signWebhookBody(webhookSecret, timestamp, body));
    expect(headers[WEBHOOK_SIGNATURE_HEADER]).not.toBe(signWebhookBody('another-secret', timestamp, body));
    const payload = JSON.parse(body) as { email: string; code: string; purpose: string; expires_at: string };
    expect(payload).toEqual({
      delivery_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      email,
      code: expect.stringMatching(/^\d{6}$/),
      purpose: 'login',
      expires_at: expect.any(String),
    });
    expect(JSON.stringify(requested.body)).not.toContain(payload.code);

    const verified = await http().post('/auth/verify-otp').send({ email, code: payload.code }).expect(200);
    await http()
      .get('/protected')
      .set('authorization', `Bearer ${verified.body.access_token as string}`)
      .expect(200);

    // A different address, so the first one's resend cooldown does not answer 429 first.
    status = 500;
    await http().post('/auth/request-otp').send({ email: 'hook-down@example.com' }).expect(503);
    expect(deliveries).toHaveLength(4); // the first attempt and two bounded retries
    // One message: the retries repeat its delivery id, signed, so the receiver can drop repeats.
    const ids = deliveries.map((delivery) => (JSON.parse(delivery.body) as { delivery_id: string }).delivery_id);
    expect(new Set(ids.slice(1)).size).toBe(1);
    expect(ids[1]).not.toBe(ids[0]);
  });
});

describe('sample app with SMTP delivery (a real SMTP server on loopback)', () => {
  const mails: { to: string; raw: string }[] = [];
  recordSecret('p@ss:word');
  let slowMs = 0;
  let smtp: SMTPServer;
  let app: INestApplication;
  const http = () => tapSecrets(request(app.getHttpServer()));

  beforeAll(async () => {
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      onAuth(auth, _session, callback) {
        if (auth.username === 'mailer' && auth.password === 'p@ss:word') callback(null, { user: 'mailer' });
        else callback(new Error('invalid credentials'));
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          setTimeout(() => {
            const raw = Buffer.concat(chunks).toString('utf8');
            recordSecret(
              /\b(\d{6})\b/.exec(
                raw
                  .split(/\r?\n\r?\n/)
                  .slice(1)
                  .join('\n'),
              )?.[1],
            );
            mails.push({ to: session.envelope.rcptTo[0]!.address, raw });
            callback();
          }, slowMs);
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const { port } = smtp.server.address() as AddressInfo;
    app = await bootSample({
      OTP_DELIVERY: 'smtp',
      SMTP_URL: `smtp://mailer:${encodeURIComponent('p@ss:word')}@127.0.0.1:${port}`,
      SMTP_FROM: 'Sample <no-reply@example.com>',
      OTP_APP_NAME: 'Acme Sample',
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    });
  });
  afterAll(async () => {
    await app.close();
    await new Promise<void>((resolve) => smtp.close(resolve));
  });

  it('mails the code, which the test reads out of the message and signs in with', async () => {
    const email = 'mailed@example.com';
    const requested = await http().post('/auth/request-otp').send({ email }).expect(200);
    expect(requested.body.dev_code).toBeUndefined();
    expect(mails).toHaveLength(1);
    expect(mails[0]!.to).toBe(email);
    expect(mails[0]!.raw).toMatch(/^Subject: .*Acme Sample/m);
    const code = /\b(\d{6})\b/.exec(
      mails[0]!.raw
        .split(/\r?\n\r?\n/)
        .slice(1)
        .join('\n'),
    )![1]!;
    await http().post('/auth/verify-otp').send({ email, code }).expect(200);
  });

  it('with OTP_DELIVERY_MODE=outbox, a slow SMTP server does not slow request-otp down', async () => {
    const { port } = smtp.server.address() as AddressInfo;
    const outboxApp = await bootSample({
      OTP_DELIVERY: 'smtp',
      OTP_DELIVERY_MODE: 'outbox',
      SMTP_URL: `smtp://mailer:${encodeURIComponent('p@ss:word')}@127.0.0.1:${port}`,
      SMTP_FROM: 'Sample <no-reply@example.com>',
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    });
    slowMs = 1500;
    try {
      const started = performance.now();
      await tapSecrets(request(outboxApp.getHttpServer()))
        .post('/auth/request-otp')
        .send({ email: 'slow@example.com' })
        .expect(200);
      expect(performance.now() - started).toBeLessThan(500);
      await outboxApp.get(CodeOutbox).drain();
      expect(mails.at(-1)!.to).toBe('slow@example.com');
    } finally {
      slowMs = 0;
      await outboxApp.close();
    }
  });
});

describe('sample app with its SMTP server down', () => {
  it('answers 503 at once and keeps no code: the next request is not held by a cooldown', async () => {
    const port = await freePort();
    const app = await bootSample({
      OTP_DELIVERY: 'smtp',
      SMTP_URL: `smtp://127.0.0.1:${port}`,
      SMTP_FROM: 'no-reply@example.com',
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    });
    try {
      const email = 'smtp-down@example.com';
      const started = performance.now();
      const first = await tapSecrets(request(app.getHttpServer())).post('/auth/request-otp').send({ email });
      expect(first.status).toBe(503);
      expect(first.body.message).toBe('The code could not be sent. Please try again later.');
      expect(performance.now() - started).toBeLessThan(2000);
      // Withdrawn: a retry is not told to wait out a cooldown for a code that was never sent.
      await tapSecrets(request(app.getHttpServer())).post('/auth/request-otp').send({ email }).expect(503);
    } finally {
      await app.close();
    }
  });
});

describe('sample app with SMS delivery (a Twilio-shaped API on loopback)', () => {
  const messages: { auth: string | undefined; form: URLSearchParams; path: string | undefined }[] = [];
  recordSecret('sms-auth-token');
  let api: Server;
  let app: INestApplication;
  const http = () => tapSecrets(request(app.getHttpServer()));

  beforeAll(async () => {
    api = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        recordSecret(/\b(\d{6})\b/.exec(form.get('Body') ?? '')?.[1]);
        messages.push({
          auth: req.headers.authorization,
          form,
          path: req.url,
        });
        res.statusCode = 201;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ sid: 'SM00000000000000000000000000000000', status: 'queued' }));
      });
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const { port } = api.address() as AddressInfo;
    app = await bootSample({
      OTP_DELIVERY: 'sms',
      SMS_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
      SMS_AUTH_TOKEN: 'sms-auth-token',
      SMS_FROM: '+15005550006',
      SMS_BASE_URL: `http://127.0.0.1:${port}`,
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    });
  });
  afterAll(async () => {
    await app.close();
    api.closeAllConnections();
    await new Promise<void>((resolve) => api.close(() => resolve()));
  });

  it("texts the code to the user's phone; an address without a phone gets the same answer and no SMS", async () => {
    const users = app.get(DataSource).getRepository(User);
    await users.save(users.create({ email: 'texted@example.com', phone: '+41 79 123 45 67', isVerified: true }));
    await http().post('/auth/request-otp').send({ email: 'texted@example.com' }).expect(200);
    // SMS defaults to the outbox (answered at once, sent in the background).
    await app.get(CodeOutbox).drain();
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message!.path).toBe(`/2010-04-01/Accounts/AC${'0'.repeat(32)}/Messages.json`);
    expect(message!.auth).toBe(`Basic ${Buffer.from(`AC${'0'.repeat(32)}:sms-auth-token`).toString('base64')}`);
    expect(message!.form.get('To')).toBe('+41791234567');
    expect(message!.form.get('From')).toBe('+15005550006');
    const code = /\b(\d{6})\b/.exec(message!.form.get('Body')!)![1]!;
    await http().post('/auth/verify-otp').send({ email: 'texted@example.com', code }).expect(200);

    const none = await http().post('/auth/request-otp').send({ email: 'no-phone@example.com' }).expect(200);
    expect(none.body).toEqual({ message: expect.any(String), expires_in: 600 });
    await app.get(CodeOutbox).drain();
    expect(messages).toHaveLength(1);
  });
});
