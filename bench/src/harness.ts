/**
 * What every scenario shares: settings, the result row, rounds and medians, fresh databases, and
 * the servers under load, each run as a child process so the load generator does not share its
 * event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { DataSource } from 'typeorm';

export const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
export const ROUND_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
export const WARMUP_SECONDS = 2;
/** Connections for single-request scenarios (guards). */
export const CONNECTIONS = 50;
/** Connections for multi-request flows (sign-ins, refresh chains, TOTP sign-ins). */
export const FLOW_CONNECTIONS = 20;
const POSTGRES_URL = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const MARIADB_URL = process.env['BENCH_MARIADB_URL'] ?? 'mysql://root@127.0.0.1:3306/test';
const BENCH_DB = 'otp_bench';

export const BACKENDS = ['sqlite', 'postgres', 'mariadb'] as const;
export type Backend = (typeof BACKENDS)[number];

/** One row of the table and of latest.json. */
export interface Measured {
  scenario: string;
  /** Requests per second, or flows (pairs, triples) per second where the scenario says so. */
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  ratio_to_bare?: number;
  ratio_to_baseline?: number;
  baseline?: string;
  /** For scenarios that are not load runs: how many measurements p50 and p99 are taken over. */
  samples?: number;
}

/** A row's numbers without its name. */
export type Rates = Omit<Measured, 'scenario'>;

/** One side of a measurement: `run` loads a server for the seconds it is given. */
export interface Contender {
  name: string;
  run: (seconds: number) => Promise<autocannon.Result>;
}

/**
 * A warm-up run of each contender (JIT, connection pools, caches), then ROUNDS rounds in which
 * they take turns, so that a change in the machine's load falls on all of them alike; for each,
 * the round with the median request rate. Any non-2xx answer or socket error fails the scenario:
 * a rate of errors means nothing.
 */
export async function alternatingMedians(contenders: readonly Contender[]): Promise<autocannon.Result[]> {
  for (const { run } of contenders) await run(WARMUP_SECONDS);
  const rounds = contenders.map((): autocannon.Result[] => []);
  for (let i = 0; i < ROUNDS; i += 1) {
    for (const [c, { name, run }] of contenders.entries()) {
      const round = await run(ROUND_SECONDS);
      if (round.non2xx > 0 || round.errors > 0) {
        throw new Error(`${name}: ${round.non2xx} non-2xx answers, ${round.errors} errors`);
      }
      rounds[c]!.push(round);
    }
  }
  return rounds.map((results) => {
    results.sort((a, b) => a.requests.average - b.requests.average);
    return results[Math.floor(results.length / 2)]!;
  });
}

/** {@link alternatingMedians} of one contender. */
export async function medianOfRounds(name: string, run: Contender['run']): Promise<autocannon.Result> {
  return (await alternatingMedians([{ name, run }]))[0]!;
}

/**
 * The numbers of a run whose unit of work is `perFlow` requests (a sign-in pair is 2); latencies
 * stay per request. With `bare`, the request rate relative to the bare route's.
 */
export function rates(result: autocannon.Result, perFlow = 1, bare?: number): Rates {
  return {
    requests_per_s: Math.round(result.requests.average / perFlow),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    ...(bare ? { ratio_to_bare: ratio(result.requests.average, bare) } : {}),
  };
}

export function ratio(value: number, baseline: number): number {
  return Number((value / baseline).toFixed(3));
}

/** GET load on one URL. */
export async function measure(url: string, headers: Record<string, string>): Promise<Rates> {
  const median = await medianOfRounds(url, (duration) =>
    autocannon({ url, headers, connections: CONNECTIONS, duration, pipelining: 1 }),
  );
  return rates(median);
}

/**
 * A fresh database for a server backend (dropped and re-created), so runs do not pile up rows;
 * undefined for SQLite (in memory), 'unreachable' when the server is down.
 */
export async function benchDatabaseUrl(backend: Backend): Promise<string | undefined> {
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

/** What a bench server prints on its first line when it is ready. */
export interface ServerInfo {
  port: number;
}

/** Starts bench/dist/<script> for a backend and waits for its ready line. */
export async function startServer<I extends ServerInfo>(
  backend: Backend,
  dbUrl: string | undefined,
  script: string,
): Promise<{ child: ChildProcess; info: I }> {
  const env = { ...process.env };
  if (backend === 'postgres') env['BENCH_POSTGRES_URL'] = dbUrl;
  if (backend === 'mariadb') env['BENCH_MARIADB_URL'] = dbUrl;
  // --expose-gc: the memory scenario collects garbage before reading the retained heap.
  const child = spawn(process.execPath, ['--expose-gc', new URL(`./${script}`, import.meta.url).pathname, backend], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${script} for ${backend} exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) as I };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** A bench server started for a scenario. */
export interface RunningServer<I extends ServerInfo = ServerInfo> {
  base: string;
  info: I;
}

/**
 * For each backend that is up: a fresh database, `scripts` started on it one after the other,
 * `body` run against them, the servers stopped. The rows of all backends, in order.
 */
export async function onEachBackendWith<I extends ServerInfo>(
  scripts: readonly string[],
  body: (backend: Backend, servers: readonly RunningServer<I>[]) => Promise<Measured[]>,
): Promise<Measured[]> {
  const rows: Measured[] = [];
  for (const backend of BACKENDS) {
    const dbUrl = await benchDatabaseUrl(backend);
    if (dbUrl === 'unreachable') {
      console.log(`[bench] ${backend} unreachable: its ${scripts.join(' + ')} scenarios are skipped`);
      continue;
    }
    const children: ChildProcess[] = [];
    try {
      const servers: RunningServer<I>[] = [];
      for (const script of scripts) {
        const { child, info } = await startServer<I>(backend, dbUrl, script);
        children.push(child);
        servers.push({ base: `http://127.0.0.1:${info.port}`, info });
      }
      rows.push(...(await body(backend, servers)));
    } finally {
      await Promise.all(children.map(stop));
    }
  }
  return rows;
}

/** {@link onEachBackendWith} one server. */
export function onEachBackend<I extends ServerInfo>(
  script: string,
  body: (backend: Backend, base: string, info: I) => Promise<Measured[]>,
): Promise<Measured[]> {
  return onEachBackendWith<I>([script], (backend, [server]) => body(backend, server!.base, server!.info));
}
