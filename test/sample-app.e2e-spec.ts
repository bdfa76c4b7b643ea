import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { signWebhookBody, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from 'nestjs-otp-auth';
import { createApp } from '../apps/sample/src/bootstrap.js';
import { loadConfig, type Environment } from '../apps/sample/src/config.js';
import { createTestDatabase, enabledBackends, type TestDatabase } from './support/databases.js';
import { refreshCookie, type Platform } from './support/test-app.js';

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
  const config = loadConfig({ DATABASE_URL: 'sqlite::memory:', COOKIE_SECURE: 'false', LOG_LEVEL: 'error', ...env });
  const app = await createApp(config);
  await app.init();
  if (config.platform === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return app;
}

/** Signs in through the developer-mode code in the request-otp answer. */
async function devSignIn(app: INestApplication, email: string): Promise<request.Response> {
  const http = () => request(app.getHttpServer());
  const requested = await http().post('/auth/request-otp').send({ email }).expect(200);
  expect(requested.body.dev_code).toMatch(/^\d{6}$/);
  return http().post('/auth/verify-otp').send({ email, code: requested.body.dev_code }).expect(200);
}

describe.each(['express', 'fastify'] as Platform[])('sample app on %s (SQLite in memory)', (platform) => {
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

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

describe.each(enabledBackends().filter((backend) => backend !== 'sqlite'))('sample app on %s', (backend) => {
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
    await request(app.getHttpServer()).get('/verified-only').set('authorization', auth).expect(200);
    const users = await database.dataSource.query('SELECT email FROM users');
    expect(users).toEqual([{ email: 'server@example.com' }]);
  });
});

/** What the webhook receiver got. */
interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

describe('sample app with webhook delivery', () => {
  const webhookSecret = 'webhook-shared-secret';
  const deliveries: Delivery[] = [];
  let status = 204;
  let server: Server;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeEach(async () => {
    deliveries.length = 0;
    status = 204;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
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
    expect(deliveries).toHaveLength(2);
  });
});
