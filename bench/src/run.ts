/**
 * `npm run bench`: load scenarios on loopback with autocannon, reported as medians of several
 * rounds after a warm-up, each with its ratio to a baseline measured in the same run. Results go
 * to the console as a table and to bench/results/latest.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { DataSource } from 'typeorm';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const ROUND_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const CONNECTIONS = 50;
const POSTGRES_URL = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const MARIADB_URL = process.env['BENCH_MARIADB_URL'] ?? 'mysql://root@127.0.0.1:3306/test';
const BENCH_DB = 'otp_bench';

interface Measured {
  scenario: string;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  ratio_to_bare?: number;
  ratio_to_baseline?: number;
  baseline?: string;
}

async function measure(url: string, headers: Record<string, string>): Promise<Omit<Measured, 'scenario'>> {
  const run = (duration: number) => autocannon({ url, headers, connections: CONNECTIONS, duration, pipelining: 1 });
  await run(2); // warm-up: JIT, connection pools, caches
  const rounds: autocannon.Result[] = [];
  for (let i = 0; i < ROUNDS; i += 1) rounds.push(await run(ROUND_SECONDS));
  for (const r of rounds) {
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
  }
  rounds.sort((a, b) => a.requests.average - b.requests.average);
  const median = rounds[Math.floor(rounds.length / 2)]!;
  return {
    requests_per_s: Math.round(median.requests.average),
    p50_ms: median.latency.p50,
    p99_ms: median.latency.p99,
  };
}

/** A fresh database for a server backend (dropped and re-created), so runs do not pile up rows. */
async function benchDatabaseUrl(backend: string): Promise<string | undefined> {
  if (backend === 'sqlite') return undefined;
  const url = backend === 'postgres' ? POSTGRES_URL : MARIADB_URL;
  const admin = new DataSource(backend === 'postgres' ? { type: 'postgres', url } : { type: 'mysql', url });
  try {
    await admin.initialize();
  } catch {
    return 'unreachable';
  }
  await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DB}`);
  await admin.query(`CREATE DATABASE ${BENCH_DB}`);
  await admin.destroy();
  const target = new URL(url);
  target.pathname = `/${BENCH_DB}`;
  return target.toString();
}

interface ServerInfo {
  port: number;
  otpToken: string;
  passportToken: string;
}

async function startServer(
  backend: string,
  dbUrl: string | undefined,
  script = 'guard-server.js',
): Promise<{ child: ChildProcess; info: ServerInfo }> {
  const env = { ...process.env };
  if (backend === 'postgres') env['BENCH_POSTGRES_URL'] = dbUrl;
  if (backend === 'mariadb') env['BENCH_MARIADB_URL'] = dbUrl;
  const child = spawn(process.execPath, [new URL(`./${script}`, import.meta.url).pathname, backend], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`guard server for ${backend} exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) as ServerInfo };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function guardOverhead(): Promise<Measured[]> {
  const results: Measured[] = [];
  for (const backend of ['sqlite', 'postgres', 'mariadb']) {
    const dbUrl = await benchDatabaseUrl(backend);
    if (dbUrl === 'unreachable') {
      console.log(`[bench] ${backend} unreachable: its scenarios are skipped`);
      continue;
    }
    const { child, info } = await startServer(backend, dbUrl);
    try {
      const base = `http://127.0.0.1:${info.port}`;
      const otp = { authorization: `Bearer ${info.otpToken}` };
      const bare = await measure(`${base}/bare`, {});
      const row = (scenario: string, m: Omit<Measured, 'scenario'>): Measured => ({
        scenario,
        ...m,
        ratio_to_bare: Number((m.requests_per_s / bare.requests_per_s).toFixed(3)),
      });
      results.push(row(`guard/${backend}/bare route`, bare));
      if (backend === 'sqlite') {
        // OtpAuthGuard and the passport recipe touch no database: measured once.
        const guarded = row('guard/OtpAuthGuard', await measure(`${base}/guarded`, otp));
        const passport = row(
          'guard/@nestjs/passport + passport-jwt recipe',
          await measure(`${base}/passport`, { authorization: `Bearer ${info.passportToken}` }),
        );
        results.push(guarded, passport, {
          scenario: 'guard/OtpAuthGuard vs passport recipe',
          requests_per_s: guarded.requests_per_s,
          p50_ms: guarded.p50_ms,
          p99_ms: guarded.p99_ms,
          ratio_to_baseline: Number((guarded.requests_per_s / passport.requests_per_s).toFixed(3)),
          baseline: 'passport recipe',
        });
      }
      results.push(row(`guard/VerifiedUserGuard/${backend}`, await measure(`${base}/verified`, otp)));
    } finally {
      await stop(child);
    }
  }
  return results;
}

/** One sign-in: request-otp then verify-otp with the code it returned, a fresh address each time. */
function signInRequests(prefix: string): autocannon.Request[] {
  let next = 0;
  return [
    {
      method: 'POST',
      path: '/auth/request-otp',
      headers: { 'content-type': 'application/json' },
      setupRequest: (request, context) => {
        const state = context as Record<string, string>;
        state['email'] = `${prefix}-${next++}@bench.example`;
        return { ...request, body: JSON.stringify({ email: state['email'] }) };
      },
      onResponse: (_status, body, context) => {
        (context as Record<string, string>)['code'] = (JSON.parse(body) as { dev_code: string }).dev_code;
      },
    },
    {
      method: 'POST',
      path: '/auth/verify-otp',
      headers: { 'content-type': 'application/json' },
      setupRequest: (request, context) => {
        const state = context as Record<string, string>;
        return { ...request, body: JSON.stringify({ email: state['email'], code: state['code'] }) };
      },
    },
  ];
}

async function loginThroughput(bareByBackend: Map<string, number>): Promise<Measured[]> {
  const results: Measured[] = [];
  for (const backend of ['sqlite', 'postgres', 'mariadb']) {
    const dbUrl = await benchDatabaseUrl(backend);
    if (dbUrl === 'unreachable') continue;
    const { child, info } = await startServer(backend, dbUrl, 'login-server.js');
    try {
      const url = `http://127.0.0.1:${info.port}`;
      const run = (duration: number, round: number) =>
        autocannon({ url, connections: 20, duration, requests: signInRequests(`${backend}-${round}`) });
      await run(2, -1);
      const rounds: autocannon.Result[] = [];
      for (let i = 0; i < ROUNDS; i += 1) rounds.push(await run(ROUND_SECONDS, i));
      for (const r of rounds)
        if (r.non2xx > 0 || r.errors > 0) throw new Error(`login ${backend}: ${r.non2xx} non-2xx`);
      rounds.sort((a, b) => a.requests.average - b.requests.average);
      const median = rounds[Math.floor(rounds.length / 2)]!;
      const pairs = Math.round(median.requests.average / 2);
      const bare = bareByBackend.get(backend);
      results.push({
        scenario: `login/request+verify pairs/${backend}`,
        requests_per_s: pairs,
        p50_ms: median.latency.p50,
        p99_ms: median.latency.p99,
        ...(bare ? { ratio_to_bare: Number((median.requests.average / bare).toFixed(3)) } : {}),
      });
    } finally {
      await stop(child);
    }
  }
  return results;
}

/** RSS after 100 000 and 200 000 distinct addresses have asked for a code (PostgreSQL if up). */
async function memoryAfterAddresses(): Promise<Measured[]> {
  const backend = (await benchDatabaseUrl('postgres')) === 'unreachable' ? 'sqlite' : 'postgres';
  const dbUrl = await benchDatabaseUrl(backend);
  const { child, info } = await startServer(backend, dbUrl, 'login-server.js');
  try {
    const url = `http://127.0.0.1:${info.port}`;
    const memory = async () => ((await (await fetch(`${url}/bench/memory`)).json()) as { rss: number }).rss;
    const flood = (prefix: string) => {
      let next = 0;
      return autocannon({
        url,
        connections: 20,
        amount: 100_000,
        requests: [
          {
            method: 'POST',
            path: '/auth/request-otp',
            headers: { 'content-type': 'application/json' },
            setupRequest: (request) => ({
              ...request,
              body: JSON.stringify({ email: `${prefix}-${next++}@m.example` }),
            }),
          },
        ],
      });
    };
    const before = await memory();
    await flood('a');
    const after100k = await memory();
    await flood('b');
    const after200k = await memory();
    const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
    console.log(
      `[bench] RSS on ${backend}: ${mb(before)} MB at start, ${mb(after100k)} MB after 100k addresses, ${mb(after200k)} MB after 200k`,
    );
    return [
      {
        scenario: `memory/RSS MB after 100k addresses (${backend})`,
        requests_per_s: 0,
        p50_ms: 0,
        p99_ms: 0,
        ratio_to_baseline: Number((after100k / before).toFixed(3)),
        baseline: `RSS at start (${mb(before)} MB); after 100k: ${mb(after100k)} MB; after 200k: ${mb(after200k)} MB`,
      },
    ];
  } finally {
    await stop(child);
  }
}

function printTable(rows: Measured[]): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('scenario', 48)} ${pad('req/s', 9)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ratio`);
  for (const r of rows) {
    const ratio = r.ratio_to_bare ?? r.ratio_to_baseline;
    const label = r.ratio_to_bare !== undefined ? 'to bare' : `to ${r.baseline ?? 'baseline'}`;
    console.log(
      `${pad(r.scenario, 48)} ${pad(String(r.requests_per_s), 9)} ${pad(String(r.p50_ms), 7)} ${pad(String(r.p99_ms), 7)} ${ratio ?? ''} ${ratio !== undefined ? label : ''}`,
    );
  }
}

const guardRows = await guardOverhead();
const bareByBackend = new Map(
  guardRows
    .filter((r) => r.scenario.endsWith('/bare route'))
    .map((r) => [r.scenario.split('/')[1]!, r.requests_per_s] as const),
);
const only = process.env['BENCH_ONLY'];
const rows = [
  ...guardRows,
  ...(only && only !== 'login' ? [] : await loginThroughput(bareByBackend)),
  ...(only && only !== 'memory' ? [] : await memoryAfterAddresses()),
];
printTable(rows);
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
const report = {
  date: new Date().toISOString(),
  machine: {
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memory_gb: Math.round(totalmem() / 2 ** 30),
  },
  settings: { rounds: ROUNDS, round_seconds: ROUND_SECONDS, connections: CONNECTIONS, warmup_seconds: 2 },
  scenarios: rows,
};
writeFileSync(new URL('../results/latest.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
console.log('\n[bench] written to bench/results/latest.json');
