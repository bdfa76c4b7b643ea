/**
 * Revocation latency across instances: two processes of the built sample app on one PostgreSQL
 * database and one Redis. For each session: sign in on A, check that B accepts the access token
 * (so B has it in its verified-token cache), log out on A, then ask B for a protected route over
 * and over until it answers 401. Two clocks: from sending the logout to A (what a user who clicks
 * "log out" waits for the token to be dead everywhere) and from A's answer (how long a token the
 * user has seen logged out still works elsewhere). A 401 on B's first try counts that try's round
 * trip, so the numbers are upper bounds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { postJson, signIn } from './flows.js';
import { benchDatabaseUrl, stop, type Measured } from './harness.js';
import { freePort } from './ports.js';

const MAIN = new URL('../../dist/apps/sample/src/main.js', import.meta.url).pathname;
const REDIS_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const SESSIONS = 50;
/** Past this, B is taken to have missed the revocation (the store pull alone runs every second). */
const GIVE_UP_MS = 5000;

interface Instance {
  child: ChildProcess;
  base: string;
}

async function startSampleApp(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && child.exitCode === null; i += 1) {
    const ready = await fetch(`${base}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { child, base };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop(child);
  throw new Error(`sample app on port ${port} did not become ready`);
}

async function redisIsUp(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** Status of GET /protected with a bearer token. */
async function protectedStatus(base: string, accessToken: string): Promise<number> {
  const response = await fetch(`${base}/protected`, { headers: { authorization: `Bearer ${accessToken}` } });
  await response.arrayBuffer(); // read to the end, so the connection is reused
  return response.status;
}

interface Latency {
  /** From sending the logout to A to B's first 401. */
  fromLogout: number;
  /** From A's logout answer to B's first 401. */
  fromAnswer: number;
  /** B's answers to the polls, the 401 included. */
  polls: number;
}

async function oneSession(a: string, b: string, email: string): Promise<Latency> {
  const tokens = await signIn(a, email);
  if ((await protectedStatus(b, tokens.access_token)) !== 200) throw new Error('B refused a fresh token');
  const sent = performance.now();
  await postJson(
    a,
    '/auth/logout',
    { refresh_token: tokens.refresh_token },
    { authorization: `Bearer ${tokens.access_token}` },
  );
  const answered = performance.now();
  let polls = 1;
  while ((await protectedStatus(b, tokens.access_token)) === 200) {
    if (performance.now() - answered > GIVE_UP_MS) throw new Error(`B still accepts a token after ${GIVE_UP_MS} ms`);
    polls += 1;
  }
  const refused = performance.now();
  return { fromLogout: refused - sent, fromAnswer: refused - answered, polls };
}

/** p50 and p99 (nearest rank: with 50 samples, the p99 is the slowest). */
function percentiles(values: readonly number[]): { p50_ms: number; p99_ms: number } {
  const sorted = [...values].sort((x, y) => x - y);
  const at = (p: number) => Number(sorted[Math.ceil((p / 100) * sorted.length) - 1]!.toFixed(1));
  return { p50_ms: at(50), p99_ms: at(99) };
}

export async function revocationLatency(): Promise<Measured[]> {
  const dbUrl = await benchDatabaseUrl('postgres');
  if (dbUrl === 'unreachable' || !(await redisIsUp())) {
    console.log('[bench] PostgreSQL or Redis unreachable: the revocation scenario is skipped');
    return [];
  }
  const prefix = `otp:bench:${randomBytes(4).toString('hex')}:`;
  const env = {
    NODE_ENV: 'development',
    DATABASE_URL: dbUrl!,
    REDIS_URL,
    // This run's keys and channels only.
    REDIS_KEY_PREFIX: prefix,
    // Shared, or tokens from A would not verify on B.
    OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    OTP_DEVELOPER_MODE: 'true',
    REFRESH_TOKEN_DELIVERY: 'body',
    COOKIE_SECURE: 'false',
    RATE_LIMITS_ENABLED: 'false',
    LOG_LEVEL: 'warn',
  };
  // One after the other: both would otherwise create the same tables at once.
  const a = await startSampleApp(env);
  let b: Instance | undefined;
  const latencies: Latency[] = [];
  try {
    b = await startSampleApp(env);
    for (let i = 0; i < SESSIONS; i += 1) {
      latencies.push(await oneSession(a.base, b.base, `revoke-${i}@bench.example`));
    }
  } finally {
    await Promise.all([stop(a.child), b && stop(b.child)]);
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
  const firstTry = latencies.filter((l) => l.polls === 1).length;
  console.log(`[bench] revocation: B refused on its first try after the logout answer in ${firstTry} of ${SESSIONS}`);
  const row = (scenario: string, values: number[]): Measured => ({
    scenario,
    requests_per_s: 0,
    ...percentiles(values),
    samples: values.length,
  });
  return [
    row(
      'revocation/logout sent on A, 401 on B (ms)',
      latencies.map((l) => l.fromLogout),
    ),
    row(
      'revocation/logout answered on A, 401 on B (ms)',
      latencies.map((l) => l.fromAnswer),
    ),
  ];
}
