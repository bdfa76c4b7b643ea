/**
 * `npm run bench`: load scenarios on loopback with autocannon, reported as medians of several
 * rounds after a warm-up, each with its ratio to a baseline measured in the same run. Results go
 * to the console as a table and to bench/results/latest.json.
 *
 * BENCH_ONLY=<group>[,<group>…] runs some groups only: guard, login, better-auth, refresh, totp,
 * revocation, memory. Groups that report a ratio to the bare route (login, refresh, totp) measure
 * the bare routes first when guard is not among them; better-auth measures our sign-ins too (in
 * turns with Better Auth's), since its ratio is to ours.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import autocannon from 'autocannon';
import {
  benchDatabaseUrl,
  CONNECTIONS,
  FLOW_CONNECTIONS,
  measure,
  onEachBackend,
  ratio,
  ROUND_SECONDS,
  ROUNDS,
  startServer,
  stop,
  WARMUP_SECONDS,
  type Backend,
  type Measured,
  type Rates,
  type ServerInfo,
} from './harness.js';
import { refreshRotation } from './refresh.js';
import { revocationLatency } from './revocation.js';
import { signInThroughput } from './sign-in.js';
import { totpSignIns } from './totp.js';

const GROUPS = ['guard', 'login', 'better-auth', 'refresh', 'totp', 'revocation', 'memory'] as const;
type Group = (typeof GROUPS)[number];

function selectedGroups(only: string | undefined): Set<Group> {
  if (!only) return new Set(GROUPS);
  const names = only.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(GROUPS as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new Error(`BENCH_ONLY: unknown group ${unknown.join(', ')}; groups: ${GROUPS.join(', ')}`);
  return new Set(names as Group[]);
}

interface GuardServerInfo extends ServerInfo {
  otpToken: string;
  passportToken: string;
}

/** The guard scenarios on each backend; with `bareOnly`, just the bare route (for ratios). */
function guardOverhead(bareOnly: boolean): Promise<Measured[]> {
  return onEachBackend<GuardServerInfo>('guard-server.js', async (backend, base, info) => {
    const otp = { authorization: `Bearer ${info.otpToken}` };
    const bare = await measure(`${base}/bare`, {});
    const row = (scenario: string, m: Rates): Measured => ({
      scenario,
      ...m,
      ratio_to_bare: ratio(m.requests_per_s, bare.requests_per_s),
    });
    const rows = [row(`guard/${backend}/bare route`, bare)];
    if (bareOnly) return rows;
    if (backend === 'sqlite') {
      // OtpAuthGuard and the passport recipe touch no database: measured once.
      const guarded = row('guard/OtpAuthGuard', await measure(`${base}/guarded`, otp));
      const passport = row(
        'guard/@nestjs/passport + passport-jwt recipe',
        await measure(`${base}/passport`, { authorization: `Bearer ${info.passportToken}` }),
      );
      rows.push(guarded, passport, {
        scenario: 'guard/OtpAuthGuard vs passport recipe',
        requests_per_s: guarded.requests_per_s,
        p50_ms: guarded.p50_ms,
        p99_ms: guarded.p99_ms,
        ratio_to_baseline: ratio(guarded.requests_per_s, passport.requests_per_s),
        baseline: 'passport recipe',
      });
    }
    rows.push(row(`guard/VerifiedUserGuard/${backend}`, await measure(`${base}/verified`, otp)));
    return rows;
  });
}

/** RSS after 100 000 and 200 000 distinct addresses have asked for a code (PostgreSQL if up). */
async function memoryAfterAddresses(): Promise<Measured[]> {
  const backend: Backend = (await benchDatabaseUrl('postgres')) === 'unreachable' ? 'sqlite' : 'postgres';
  const dbUrl = await benchDatabaseUrl(backend);
  const { child, info } = await startServer(backend, dbUrl, 'login-server.js');
  try {
    const url = `http://127.0.0.1:${info.port}`;
    const readings: { rss: number; heapUsed: number }[] = [];
    const memory = async () => {
      readings.push((await (await fetch(`${url}/bench/memory`)).json()) as { rss: number; heapUsed: number });
      return readings.at(-1)!.rss;
    };
    const flood = (prefix: string) => {
      let next = 0;
      return autocannon({
        url,
        connections: FLOW_CONNECTIONS,
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
    const heap = readings.map((r) => mb(r.heapUsed));
    console.log(
      `[bench] RSS on ${backend}: ${mb(before)} MB at start, ${mb(after100k)} MB after 100k addresses, ${mb(after200k)} MB after 200k; ` +
        `heap retained after GC: ${heap.join(' / ')} MB`,
    );
    return [
      {
        scenario: `memory/RSS MB after 100k addresses (${backend})`,
        requests_per_s: 0,
        p50_ms: 0,
        p99_ms: 0,
        ratio_to_baseline: ratio(after100k, before),
        baseline:
          `RSS at start (${mb(before)} MB); after 100k: ${mb(after100k)} MB; after 200k: ${mb(after200k)} MB; ` +
          `heap retained after GC: ${heap.join(' / ')} MB`,
      },
    ];
  } finally {
    await stop(child);
  }
}

function printTable(rows: readonly Measured[]): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('scenario', 48)} ${pad('req/s', 9)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ratio`);
  for (const r of rows) {
    const ratioValue = r.ratio_to_bare ?? r.ratio_to_baseline;
    const label = r.ratio_to_bare !== undefined ? 'to bare' : `to ${r.baseline ?? 'baseline'}`;
    const rate = r.samples !== undefined ? `(${r.samples}×)` : String(r.requests_per_s);
    console.log(
      `${pad(r.scenario, 48)} ${pad(rate, 9)} ${pad(String(r.p50_ms), 7)} ${pad(String(r.p99_ms), 7)} ${ratioValue ?? ''} ${ratioValue !== undefined ? label : ''}`,
    );
  }
}

const selected = selectedGroups(process.env['BENCH_ONLY']);
const needsBare = (['login', 'refresh', 'totp'] as const).some((group) => selected.has(group));
const rows: Measured[] = [];
if (selected.has('guard') || needsBare) rows.push(...(await guardOverhead(!selected.has('guard'))));
const bare = new Map(
  rows
    .filter((r) => r.scenario.endsWith('/bare route'))
    .map((r) => [r.scenario.split('/')[1] as Backend, r.requests_per_s] as const),
);
if (selected.has('login') || selected.has('better-auth')) {
  rows.push(...(await signInThroughput(bare, selected.has('better-auth'))));
}
if (selected.has('refresh')) rows.push(...(await refreshRotation(bare)));
if (selected.has('totp')) rows.push(...(await totpSignIns(bare)));
if (selected.has('revocation')) rows.push(...(await revocationLatency()));
if (selected.has('memory')) rows.push(...(await memoryAfterAddresses()));
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
  settings: {
    rounds: ROUNDS,
    round_seconds: ROUND_SECONDS,
    connections: CONNECTIONS,
    flow_connections: FLOW_CONNECTIONS,
    warmup_seconds: WARMUP_SECONDS,
  },
  scenarios: rows,
};
writeFileSync(new URL('../results/latest.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
console.log('\n[bench] written to bench/results/latest.json');
