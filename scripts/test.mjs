#!/usr/bin/env node
// `npm test`: finds which databases are reachable, says so, and runs Jest (unit + e2e) on
// SQLite always and on PostgreSQL / MariaDB when they answer. Set OTP_REQUIRE_BACKENDS
// (e.g. "postgres,mariadb", as CI does) to fail instead of skipping an unreachable one.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MARIADB_URL = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test';

async function probePostgres() {
  const { Client } = require('pg');
  const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  await client.query('SELECT 1');
  await client.end();
}

async function probeMariadb() {
  const mysql = require('mysql2/promise');
  const connection = await mysql.createConnection({ uri: MARIADB_URL, connectTimeout: 3000 });
  await connection.query('SELECT 1');
  await connection.end();
}

const required = (process.env.OTP_REQUIRE_BACKENDS ?? '').split(',').filter(Boolean);
const backends = ['sqlite'];
const skipped = [];
/** A URL for the console: any user:password part masked. */
const shown = (url) => url.replace(/\/\/[^@/]*@/, '//***@');

for (const [name, probe, url] of [
  ['postgres', probePostgres, POSTGRES_URL],
  ['mariadb', probeMariadb, MARIADB_URL],
]) {
  try {
    await probe();
    backends.push(name);
  } catch (error) {
    if (required.includes(name)) {
      console.error(
        `[test] ${name} is required (OTP_REQUIRE_BACKENDS) but unreachable at ${shown(url)}: ${error.message}`,
      );
      process.exit(1);
    }
    skipped.push(`${name} (unreachable at ${shown(url)}: ${error.message})`);
  }
}
console.log(`[test] database backends under test: ${backends.join(', ')}`);
for (const s of skipped) console.log(`[test] SKIPPED backend ${s}`);
const mongoUri = process.env.MONGODB_URI ?? process.env.TEST_MONGODB_URI;
console.log(
  mongoUri
    ? `[test] MongoDB store: testing against ${shown(mongoUri)}`
    : '[test] MongoDB store: NOT TESTED (set MONGODB_URI; no MongoDB server can run on this machine)',
);

// Rate limits, stateless codes and the multi-instance tests use a real Redis; there is no skip.
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
try {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000 });
  redis.on('error', () => undefined);
  await redis.connect();
  await redis.ping();
  await redis.quit();
  console.log(`[test] Redis: reachable at ${shown(redisUrl)}`);
} catch (error) {
  console.error(
    `[test] Redis is required but unreachable at ${shown(redisUrl)} (${error.message}); start it or set REDIS_URL.`,
  );
  process.exit(1);
}

// The multi-instance test runs the built sample app in child processes.
const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
if (build.status !== 0) {
  console.error('[test] the build failed; fix it first (npm run build)');
  process.exit(build.status ?? 1);
}

// The packages as npm would publish them: declared imports, shipped export targets.
const packages = spawnSync(process.execPath, ['scripts/check-packages.mjs'], { stdio: 'inherit' });
if (packages.status !== 0) process.exit(packages.status ?? 1);

const result = spawnSync(
  process.execPath,
  [
    '--experimental-vm-modules',
    '--no-warnings=ExperimentalWarning',
    'node_modules/jest/bin/jest.js',
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit', env: { ...process.env, OTP_TEST_BACKENDS: backends.join(',') } },
);
console.log(
  `[test] backends that ran: ${backends.join(', ')}${skipped.length ? `; skipped: ${skipped.map((s) => s.split(' ')[0]).join(', ')}` : ''}`,
);
if (result.status !== 0) process.exit(result.status ?? 1);

// The packed packages in fresh apps outside the workspace (test/consumer/run.mjs). It needs the
// npm registry and PostgreSQL; OTP_SKIP_CONSUMER=1 skips it locally, never where
// OTP_REQUIRE_CONSUMER=1 (CI).
const focused = process.argv.length > 2; // `npm test -- <pattern>` runs a part of the Jest suite only

// The Python client's own tests, against the sample app they start (clients/python/run_tests.sh).
if (!focused) {
  const python = spawnSync('bash', ['clients/python/run_tests.sh'], {
    stdio: 'inherit',
    env: { ...process.env, OTP_PY_SKIP_BUILD: '1' },
  });
  if (python.status !== 0) process.exit(python.status ?? 1);
}
if (process.env.OTP_SKIP_CONSUMER === '1' || focused) {
  if (process.env.OTP_REQUIRE_CONSUMER === '1') {
    console.error('[test] the packed-package test is required (OTP_REQUIRE_CONSUMER) but was skipped');
    process.exit(1);
  }
  console.log(
    `[test] packed-package test: SKIPPED (${focused ? 'a focused Jest run' : 'OTP_SKIP_CONSUMER=1'}); run npm run test:consumer`,
  );
  process.exit(0);
}
const consumer = spawnSync(process.execPath, ['test/consumer/run.mjs'], { stdio: 'inherit' });
process.exit(consumer.status ?? 1);
