import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createTestDatabase, enabledBackends, type TestDatabase } from './support/databases.js';
import { assertNoLeakedSecrets, capturedLogs, recordResponseSecrets, recordSecret } from './support/log-capture.js';
import { freePort } from './support/network-peers.js';

/**
 * Two sample-app processes behind no balancer at all (the test is the balancer): one PostgreSQL
 * database, one Redis. Everything a client sees must hold whichever instance it reaches.
 * The processes run the built app (`npm test` builds first).
 */
const MAIN = new URL('../dist/apps/sample/src/main.js', import.meta.url).pathname;
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const hasPostgres = enabledBackends().includes('postgres');
if (!hasPostgres) console.warn('multi-instance e2e: PostgreSQL is not available; the test is SKIPPED.');
if (!existsSync(MAIN)) throw new Error(`multi-instance e2e: ${MAIN} is missing; run \`npm run build\` first.`);

interface Instance {
  process: ChildProcess;
  url: string;
  output: string[];
}

async function startInstance(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  // Everything the processes print goes through the leak check too (they log at debug level),
  // line by line (a chunk may end mid-line) and uncoloured (NO_COLOR), so a code at the start
  // of a message is not glued to an escape sequence.
  const keep = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      output.push(chunk.toString());
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      capturedLogs.push(...lines);
    });
    stream.on('end', () => {
      if (partial !== '') capturedLogs.push(partial);
    });
  };
  keep(child.stdout!);
  keep(child.stderr!);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i += 1) {
    if (child.exitCode !== null) break;
    const ready = await fetch(`${url}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { process: child, url, output };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill();
  throw new Error(`instance did not become ready:\n${output.join('')}`);
}

async function stopInstance(instance: Instance | undefined): Promise<void> {
  if (!instance || instance.process.exitCode !== null) return;
  const exited = new Promise((resolve) => instance.process.once('exit', resolve));
  instance.process.kill('SIGTERM');
  await exited;
}

/** POSTs JSON; the tokens in the answer are recorded as secrets for the leak check. */
async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (response.headers.get('content-type')?.includes('json')) {
    recordResponseSecrets({
      body: (await response.clone().json()) as unknown,
      headers: { 'set-cookie': response.headers.getSetCookie() },
    });
  }
  return response;
}

(hasPostgres ? describe : describe.skip)('two sample-app processes sharing PostgreSQL and Redis', () => {
  let database: TestDatabase;
  let receiver: Server;
  const codes = new Map<string, string>();
  let a: Instance;
  let b: Instance;
  const prefix = `otp:mi:${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    database = await createTestDatabase('postgres', []);
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const { email, code } = JSON.parse(Buffer.concat(chunks).toString()) as { email: string; code: string };
        recordSecret(code);
        codes.set(email, code);
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: database.url!,
      REDIS_URL,
      OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
      OTP_DELIVERY: 'webhook',
      OTP_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/otp`,
      OTP_WEBHOOK_SECRET: 'multi-instance-webhook-secret-of-32+',
      COOKIE_SECURE: 'false',
      REFRESH_TOKEN_DELIVERY: 'body',
      OTP_RESEND_COOLDOWN: '1',
      OTP_MAX_ATTEMPTS: '3',
      RATE_LIMIT_SEND_PER_EMAIL: '3/600',
      LOG_LEVEL: 'debug',
      // Keys of this run only, so other runs' counters never interfere.
      REDIS_KEY_PREFIX: prefix,
    };
    // As in a rollout: the first instance creates the tables, the second only uses them.
    a = await startInstance(env);
    b = await startInstance({ ...env, DATABASE_SYNCHRONIZE: 'false' });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stopInstance(a), stopInstance(b)]);
    await new Promise((resolve) => receiver?.close(resolve));
    await database?.drop();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    // Again after shutdown (the per-file check runs before this hook, so it saw only part of it).
    assertNoLeakedSecrets();
  });

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('reports the database and Redis in /health/ready', async () => {
    for (const instance of [a, b]) {
      const body = (await (await fetch(`${instance.url}/health/ready`)).json()) as { info: Record<string, unknown> };
      expect(body.info).toMatchObject({ database: { status: 'up' }, redis: { status: 'up' } });
    }
  });

  it('a code requested on one instance signs in on the other; the cooldown is shared', async () => {
    const email = 'roaming@example.com';
    expect((await post(a.url, '/auth/request-otp', { email })).status).toBe(200);
    expect((await post(b.url, '/auth/request-otp', { email })).status).toBe(429);
    const verified = await post(b.url, '/auth/verify-otp', { email, code: codes.get(email) });
    expect(verified.status).toBe(200);
    // The same code again, on the first instance: used up.
    expect((await post(a.url, '/auth/verify-otp', { email, code: codes.get(email) })).status).toBe(401);
  });

  it('attempt caps are shared: three wrong guesses across both lock the code on both', async () => {
    const email = 'guessing@example.com';
    await post(a.url, '/auth/request-otp', { email });
    const code = codes.get(email)!;
    const wrong = code === '000000' ? '000001' : '000000';
    for (const base of [a.url, b.url, a.url]) {
      expect((await post(base, '/auth/verify-otp', { email, code: wrong })).status).toBe(401);
    }
    expect((await post(b.url, '/auth/verify-otp', { email, code })).status).toBe(401);
  });

  it('rate limits are shared through Redis', async () => {
    const email = 'limited@example.com';
    const statuses: number[] = [];
    for (const base of [a.url, b.url, a.url, b.url, a.url]) {
      statuses.push((await post(base, '/auth/request-otp', { email })).status);
      await sleep(1050); // past the 1 s resend cooldown, so only the rate limit can refuse
    }
    // 3 per 10 min across both instances (each alone would allow all five). Sliding-window
    // counters may let one more through when a fixed window boundary falls inside the test.
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
  }, 15_000);

  it('logout on one instance is refused by the other within a second (measured)', async () => {
    const email = 'logout@example.com';
    await post(a.url, '/auth/request-otp', { email });
    const tokens = (await (await post(a.url, '/auth/verify-otp', { email, code: codes.get(email) })).json()) as {
      access_token: string;
      refresh_token: string;
    };
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    expect((await fetch(`${b.url}/protected`, { headers: auth })).status).toBe(200);

    const started = performance.now();
    expect((await post(a.url, '/auth/logout', { refresh_token: tokens.refresh_token }, auth)).status).toBe(200);
    let status = 200;
    while (status === 200 && performance.now() - started < 5000) {
      status = (await fetch(`${b.url}/protected`, { headers: auth })).status;
    }
    const latencyMs = performance.now() - started;
    console.log(`[multi-instance] logout on A refused on B after ${latencyMs.toFixed(1)} ms`);
    expect(status).toBe(401);
    // Pushed over Redis pub/sub: well under the store pull's 1 s interval, which is the fallback.
    expect(latencyMs).toBeLessThan(250);
    expect((await post(b.url, '/auth/refresh', { refresh_token: tokens.refresh_token })).status).toBe(401);
  });
});
