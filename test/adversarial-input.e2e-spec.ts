import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { parse as parseCookie } from 'cookie';
import fc from 'fast-check';
import { OtpAuthService } from 'nestjs-otp-auth';
import { generateSync } from 'otplib';
import type { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { User } from '../apps/sample/src/user.entity.js';
import { enabledBackends, type Backend } from './support/databases.js';
import { recordSecret } from './support/log-capture.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import { refreshCookie, type Platform } from './support/test-app.js';

/*
 * Black-box input fuzzing of the sample app over HTTP (fast-check), on every enabled database and
 * on Express and Fastify: arbitrary JSON bodies, headers, cookies, content types, oversized bodies,
 * and unicode / case variants of addresses and codes. Two invariants hold for every request:
 *
 *   1. the status is never 5xx;
 *   2. a rejected request changes nothing in the database. Rows of every table of the module
 *      (and `users`) are compared before and after each request.
 *
 * One rejection legitimately writes: a well-formed guess at a live code is counted before it is
 * judged, so the limits hold under parallel guessing. So we decided: on 400, 403, 404, 409, 413,
 * 415 and 429 nothing may change; on 401 only attempt counters may move (otp_codes.attempts /
 * failure_count / failure_window_start of the row of the address in the request, otp_totp's
 * failure_count / failure_window_start and otp_mfa_challenges.attempts of the user whose token
 * was sent). No row may appear or disappear on any rejection.
 * One more write on 401, in the look-alike test only: the right code for an address whose account
 * cannot be created (MariaDB's accent-insensitive collation already holds an "equal" address) is
 * spent before the refusal; the code was right, so that is not a rejected guess.
 * Successes are held to what they are for: a read (introspect, verify, the example routes, the
 * QR code, health) writes nothing; request-otp touches only the code row of its own address;
 * totp/setup only the caller's enrolment; logout without a working credential (the fuzz never
 * sends it one) changes nothing. Routes that check a code may write anything on success, which
 * needs the right code: the generators replace a code that could be right with a wrong one.
 * A 2xx from a guarded route without a working credential fails too.
 *
 * Rate limits are on (in memory) with limits no fuzz reaches, and TRUST_PROXY=1, so the limiter
 * reads every body and X-Forwarded-For header without ever answering 429 for volume.
 *
 * On failure fast-check prints the seed and path; replay one with FC_SEED=<seed> FC_PATH=<path>
 * (see `params` for the fixed default seed and FC_SEED=random).
 */

const API_KEY = 'fuzz-introspection-key-0123456789abcdef01234567';
const COOKIE = 'otp_refresh';
/** Addresses with a live code, so well-formed wrong guesses reach the attempt counters. */
const LIVE = ['live-1@example.com', 'live-2@example.com'] as const;
const USER_A = 'fuzz-a@example.com';
const USER_B = 'fuzz-b@example.com';
/** The ASCII account look-alikes aim at (with a k: the Kelvin sign lower-cases to ASCII k). */
const VICTIM = 'kevin@example.com';
const POLLUTION_MARK = 'fuzzPolluted';

/** fast-check runs per property: full on SQLite, lighter where every request costs database round trips. */
function runsFor(backend: Backend): {
  bodies: number;
  headers: number;
  strings: number;
  factors: number;
  variants: number;
} {
  return backend === 'sqlite'
    ? { bodies: 120, headers: 120, strings: 150, factors: 60, variants: 10 }
    : { bodies: 60, headers: 60, strings: 60, factors: 25, variants: 5 };
}

/**
 * A fixed seed by default, so `npm test` is repeatable and a red CI run means a change broke
 * something, not that a new sample turned up. `FC_SEED=random` explores with fresh seeds (run it
 * now and then; a failure prints the seed and path), `FC_SEED=<n> FC_PATH=<p>` replays one.
 */
const DEFAULT_SEED = 20261124;

function params<T>(numRuns: number): fc.Parameters<T> {
  const seed = process.env['FC_SEED'];
  if (seed === 'random') return { numRuns };
  return { numRuns, seed: seed === undefined ? DEFAULT_SEED : Number(seed), path: process.env['FC_PATH'] };
}

// ---- endpoints ---------------------------------------------------------------------------------

/** What a 2xx of an endpoint may change. */
type OnSuccess = 'nothing' | 'own-code-row' | 'own-totp-row' | 'anything';

interface Endpoint {
  readonly method: 'get' | 'post';
  readonly path: string;
  /** Body fields of its DTO. */
  readonly fields: readonly string[];
  /** The credential it demands in `Authorization`; a 2xx without it is a bug. */
  readonly guard?: 'access' | 'api-key' | 'refresh-cookie';
  /** Never sent a working credential: it would end the sessions the fuzz relies on. */
  readonly noWorkingCredential?: boolean;
  /** A success renders a QR code (~0.25 s of CPU): working tokens are sent to it less often. */
  readonly costly?: boolean;
  readonly onSuccess: OnSuccess;
}

const ENDPOINTS: readonly Endpoint[] = [
  { method: 'post', path: '/auth/request-otp', fields: ['email', 'locale'], onSuccess: 'own-code-row' },
  // A 2xx here means a right code (only by a one-in-a-million guess, which the builder avoids).
  { method: 'post', path: '/auth/verify-otp', fields: ['email', 'code'], onSuccess: 'anything' },
  {
    method: 'post',
    path: '/auth/refresh',
    fields: ['refresh_token'],
    guard: 'refresh-cookie',
    noWorkingCredential: true,
    onSuccess: 'nothing',
  },
  { method: 'post', path: '/auth/logout', fields: ['refresh_token'], noWorkingCredential: true, onSuccess: 'nothing' },
  {
    method: 'post',
    path: '/auth/logout-all',
    fields: [],
    guard: 'access',
    noWorkingCredential: true,
    onSuccess: 'nothing',
  },
  { method: 'post', path: '/auth/totp/setup', fields: [], guard: 'access', costly: true, onSuccess: 'own-totp-row' },
  { method: 'get', path: '/auth/totp/qr', fields: [], guard: 'access', costly: true, onSuccess: 'nothing' },
  { method: 'post', path: '/auth/totp/confirm', fields: ['code'], guard: 'access', onSuccess: 'anything' },
  {
    method: 'post',
    path: '/auth/totp/disable',
    fields: ['code', 'backup_code', 'end_other_sessions'],
    guard: 'access',
    onSuccess: 'anything',
  },
  {
    method: 'post',
    path: '/auth/totp/backup-codes',
    fields: ['code', 'backup_code', 'end_other_sessions'],
    guard: 'access',
    onSuccess: 'anything',
  },
  { method: 'post', path: '/auth/totp/verify', fields: ['mfa_token', 'code', 'backup_code'], onSuccess: 'anything' },
  {
    method: 'post',
    path: '/auth/introspect',
    fields: ['token', 'token_type_hint'],
    guard: 'api-key',
    onSuccess: 'nothing',
  },
  { method: 'get', path: '/auth/verify', fields: [], guard: 'access', onSuccess: 'nothing' },
  { method: 'get', path: '/protected', fields: [], guard: 'access', onSuccess: 'nothing' },
  { method: 'get', path: '/verified-only', fields: [], guard: 'access', onSuccess: 'nothing' },
  { method: 'get', path: '/claims', fields: [], guard: 'access', onSuccess: 'nothing' },
  { method: 'get', path: '/health', fields: [], onSuccess: 'nothing' },
  { method: 'get', path: '/health/ready', fields: [], onSuccess: 'nothing' },
];
const endpoint = (path: string): Endpoint => ENDPOINTS.find((e) => e.path === path)!;
const POST_ENDPOINTS = ENDPOINTS.filter((e) => e.method === 'post');

// ---- database snapshots ------------------------------------------------------------------------

/** Every table the app writes, by primary key (real names: libs/otp-auth/src/typeorm/entities.ts). */
const TABLES: Readonly<Record<string, readonly string[]>> = {
  users: ['id'],
  otp_codes: ['address_key', 'purpose'],
  otp_sessions: ['id'],
  otp_refresh_tokens: ['token_hash'],
  otp_revocations: ['revocation_key'],
  otp_totp: ['user_id'],
  otp_backup_codes: ['id'],
  otp_mfa_challenges: ['id'],
};

type Row = Record<string, unknown>;
/** table → primary key → row. */
type Snapshot = Map<string, Map<string, Row>>;

async function snapshot(db: DataSource): Promise<Snapshot> {
  const tables = await Promise.all(
    Object.entries(TABLES).map(async ([table, key]) => {
      const rows = (await db.query(`SELECT * FROM ${table}`)) as Row[];
      return [table, new Map(rows.map((row) => [key.map((k) => String(row[k])).join('|'), row]))] as const;
    }),
  );
  return new Map(tables);
}

/** Row count and a hash of all rows, per table: the short form for failure messages. */
function fingerprint(state: Snapshot): string {
  return [...state]
    .map(([table, rows]) => {
      const hash = createHash('sha256');
      for (const line of [...rows.values()].map((row) => JSON.stringify(row)).sort()) hash.update(line);
      return `${table}=${rows.size}#${hash.digest('hex').slice(0, 8)}`;
    })
    .join(' ');
}

interface Change {
  readonly table: string;
  readonly key: string;
  readonly kind: 'insert' | 'update' | 'delete';
  readonly columns: readonly string[];
  readonly row: Row;
}

function changes(before: Snapshot, after: Snapshot): Change[] {
  const found: Change[] = [];
  for (const [table, rows] of after) {
    const old = before.get(table)!;
    for (const [key, row] of rows) {
      const previous = old.get(key);
      if (!previous) {
        found.push({ table, key, kind: 'insert', columns: Object.keys(row), row });
        continue;
      }
      const columns = Object.keys(row).filter((c) => JSON.stringify(row[c]) !== JSON.stringify(previous[c]));
      if (columns.length > 0) found.push({ table, key, kind: 'update', columns, row });
    }
    for (const [key, row] of old) if (!rows.has(key)) found.push({ table, key, kind: 'delete', columns: [], row });
  }
  return found;
}

const describeChange = (c: Change) => `${c.kind} ${c.table}[${c.key.slice(0, 16)}] ${c.columns.join(',')}`;

// ---- what a response may change ----------------------------------------------------------------

/** Whose counters a 401 may move and whose rows a success may touch. */
interface Principal {
  /** Hex SHA-256 of the normalised address in the body (how otp_codes rows are keyed). */
  readonly addressKey?: string;
  /** The user behind the access or mfa token sent. */
  readonly userId?: string;
}

/** As the library keys code rows: the normalised address (trimmed, lower-cased, NFC). */
const addressKey = (email: string) =>
  createHash('sha256').update(email.trim().toLowerCase().normalize('NFC')).digest('hex');

const COUNTERS: Readonly<Record<string, readonly string[]>> = {
  otp_codes: ['attempts', 'failure_count', 'failure_window_start'],
  otp_totp: ['failure_count', 'failure_window_start'],
  otp_mfa_challenges: ['attempts'],
};

function ownRow(change: Change, principal: Principal): boolean {
  if (change.table === 'otp_codes') {
    return principal.addressKey !== undefined && change.row['address_key'] === principal.addressKey;
  }
  return principal.userId !== undefined && String(change.row['user_id']) === principal.userId;
}

function allowed(probe: Probe, status: number): (change: Change) => boolean {
  const { principal } = probe;
  if (status >= 200 && status < 300) {
    switch (probe.endpoint.onSuccess) {
      case 'anything':
        return () => true;
      case 'own-code-row':
        return (c) => c.table === 'otp_codes' && c.kind !== 'delete' && ownRow(c, principal);
      case 'own-totp-row':
        return (c) => c.table === 'otp_totp' && c.kind !== 'delete' && ownRow(c, principal);
      case 'nothing':
        return () => false;
    }
  }
  if (status === 401) {
    return (c) => {
      if (c.kind !== 'update' || !ownRow(c, principal)) return false;
      // The right code for the address, refused afterwards (e.g. its account cannot be created
      // because a case- or accent-insensitive collation holds a look-alike): the code is spent.
      if (probe.rightCode && c.table === 'otp_codes') return true;
      return c.columns.every((column) => COUNTERS[c.table]?.includes(column) === true);
    };
  }
  return () => false;
}

// ---- requests ----------------------------------------------------------------------------------

/**
 * The one 5xx that is not a fault: readiness reporting the database slower than its 1.5 s budget
 * (other suites can load a shared server database). Only terminus' own "down" answer counts.
 */
function readinessDown(probe: Probe, res: Response): boolean {
  const body = res.body as { status?: unknown; error?: { database?: { status?: unknown } } } | undefined;
  return (
    probe.endpoint.path === '/health/ready' &&
    res.status === 503 &&
    body?.status === 'error' &&
    body.error?.database?.status === 'down'
  );
}

interface Probe {
  readonly endpoint: Endpoint;
  readonly headers: Readonly<Record<string, string>>;
  /** Several `Cookie` header lines (Node joins them with "; "). */
  readonly cookies?: readonly string[];
  readonly body?: string | Buffer;
  readonly principal: Principal;
  /** false: the request carries no working credential for `endpoint.guard`, so no 2xx. */
  readonly authorized?: boolean;
  readonly rightCode?: boolean;
}

/** Set by the harness state of each test case (see `describe.each` below). */
interface Credentials {
  readonly accessA: string;
  readonly refreshA: string;
  readonly userA: string;
  readonly accessB: string;
  readonly userB: string;
  readonly mfaB: string;
  secretA: string;
  readonly secretB: string;
}

function bodyOf(text: string | Buffer | undefined): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)[name]
    : undefined;
}

// ---- generators --------------------------------------------------------------------------------

/** Characters that trip parsers, normalisers and databases. */
const TRICKY = [
  '\u0000', '\u0001', '\u001f', '\u007f', '\t', '\n', '\r\n', ' ', '\u00a0', '\u3000', '\u2028', '\ufeff',
  // invisible: zero-width space / non-joiner / joiner, word joiner, soft hyphen
  '\u200b', '\u200c', '\u200d', '\u2060', '\u00ad',
  // direction marks, embeddings, overrides and isolates
  '\u200e', '\u200f', '\u202a', '\u202e', '\u2066', '\u2069',
  // combining acute, diaeresis, cedilla, enclosing circle
  '\u0301', '\u0308', '\u0327', '\u20dd',
  // full-width and small-form @, full-width and ideographic full stops, full-width a and A
  '\uff20', '\ufe6b', '\uff0e', '\u3002', '\uff41', '\uff21',
  // Cyrillic а е о і, Greek ο Α
  '\u0430', '\u0435', '\u043e', '\u0456', '\u03bf', '\u0391',
  // Kelvin sign, dotted I, dotless i, sharp s, long s, ligature fi
  '\u212a', '\u0130', '\u0131', '\u00df', '\u017f', '\ufb01',
  // astral emoji, lone surrogates, replacement character, non-character
  '\ud83d\ude00', '\ud800', '\udfff', '\ufffd', '\uffff',
  '"', "'", '\\', '%', '%00', '<', '>', ';', ',', '@', '.', '..', '=', '&', '+', '#', '?', '/', '*',
]; // prettier-ignore

const trickyChar = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TRICKY) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const trickyText = (maxLength = 24) => fc.string({ unit: trickyChar, maxLength });

/** What Node lets a client put in a header value: tab, printable ASCII, and bytes 0x80–0xFF. */
const headerChar = fc
  .oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.constant(0x09) },
    { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  )
  .map((c) => String.fromCharCode(c));
const headerText = (maxLength = 48) => fc.string({ unit: headerChar, maxLength });

const DIGIT_SCRIPTS = [
  '0123456789',
  '０１２３４５６７８９', // full-width
  '٠١٢٣٤٥٦٧٨٩', // Arabic-Indic
  '۰۱۲۳۴۵۶۷۸۹', // extended Arabic-Indic
  '०१२३४५६७८९', // Devanagari
  '⁰¹²³⁴⁵⁶⁷⁸⁹', // superscripts
  '𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗', // mathematical bold (astral)
].map((digits) => Array.from(digits));

const wellFormedCode = fc.stringMatching(/^\d{6}$/);
const insertAt = (text: string, at: number, piece: string, replace = false) => {
  const i = at % (text.length + 1);
  return text.slice(0, i) + piece + text.slice(replace ? i + 1 : i);
};

/** Codes: well-formed (they reach the counters), other scripts' digits, digits with junk, huge, wrong types. */
const codeArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^\d{4,10}$/) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...DIGIT_SCRIPTS),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 4, maxLength: 10 }),
      )
      .map(([script, digits]) => digits.map((d) => script[d]!).join('')),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(wellFormedCode, fc.nat(), trickyChar, fc.boolean())
      .map(([c, at, ch, r]) => insertAt(c, at, ch, r)),
  },
  { weight: 1, arbitrary: fc.integer({ min: 11, max: 20_000 }).map((n) => '7'.repeat(n)) },
  { weight: 1, arbitrary: trickyText() },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constant(null),
      fc.boolean(),
      fc.array(wellFormedCode, { maxLength: 2 }),
    ),
  },
);

/** Whitespace that String.prototype.trim removes. */
const TRIMMED = [' ', '\t', '\n', '\r', '\u00a0', '\u3000', '\u2028', '\ufeff', '\u2003', '\u1680'];
const trimmable = fc.string({ unit: fc.constantFrom(...TRIMMED), maxLength: 3 });
/** The same address as far as the module is concerned: case scrambled, trim-able whitespace around. */
const sameAddress = (base: fc.Arbitrary<string>) =>
  fc.tuple(trimmable, fc.mixedCase(base), trimmable).map(([left, core, right]) => left + core + right);
/** An address with one to three tricky characters inserted or substituted. */
const mangled = (base: fc.Arbitrary<string>) =>
  fc
    .tuple(base, fc.array(fc.tuple(fc.nat(), trickyChar, fc.boolean()), { minLength: 1, maxLength: 3 }))
    .map(([text, edits]) => edits.reduce((acc, [at, ch, replace]) => insertAt(acc, at, ch, replace), text));

const emailArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: sameAddress(fc.constantFrom(...LIVE)) },
  { weight: 2, arbitrary: fc.emailAddress() },
  { weight: 3, arbitrary: mangled(fc.oneof(fc.constantFrom(...LIVE), fc.emailAddress())) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 5_000 }).map((n) => `${'a'.repeat(n)}@example.com`) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 300 }).map((n) => `a@${'b'.repeat(n)}.com`) },
  { weight: 1, arbitrary: trickyText(40) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constant(null),
      fc.integer(),
      fc.boolean(),
      fc.constant({}),
      fc.array(fc.emailAddress(), { maxLength: 2 }),
    ),
  },
);

const localeArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('en', 'de-CH', 'zh-Hant-TW', 'EN_us', 'x', 'en-' + 'a'.repeat(300)),
  trickyText(12),
  fc.integer(),
);

/** A JSON document as a syntax tree, so keys such as `__proto__` and duplicates survive into the text. */
type Json = null | boolean | number | string | Json[] | { readonly entries: readonly (readonly [string, Json])[] };

function render(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(render).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${render(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A plain JSON value as a syntax tree. */
function jsonOf(value: unknown): Json {
  if (Array.isArray(value)) return value.map(jsonOf);
  if (value !== null && typeof value === 'object') {
    return { entries: Object.entries(value).map(([k, v]) => [k, jsonOf(v)] as const) };
  }
  return value as Json;
}

const FIELD_NAMES = [
  'email',
  'code',
  'locale',
  'refresh_token',
  'token',
  'token_type_hint',
  'mfa_token',
  'backup_code',
];
const ODD_KEYS = [
  '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineSetter__',
  'isVerified', 'is_verified', 'id', 'user_id', 'sub', 'amr', 'active', 'Email', 'EMAIL', 'email ', '',
]; // prettier-ignore
const keyArb = fc.oneof(fc.constantFrom(...FIELD_NAMES, ...ODD_KEYS), trickyText(8));
const leafArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  trickyText(),
  fc.emailAddress(),
  wellFormedCode,
);
const { json: jsonArb } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    leafArb,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.array(fc.tuple(keyArb, tie('json')), { maxLength: 5 }).map((entries) => ({ entries })),
  ),
}));

/** A body nested far deeper than any DTO (still well under Express's 100 kB limit). */
const deepBodyArb = (fields: readonly string[]) =>
  fc
    .record({
      field: fc.constantFrom(...fields, 'x'),
      depth: fc.integer({ min: 64, max: 12_000 }),
      kind: fc.constantFrom('array', 'object'),
    })
    .map(({ field: name, depth, kind }) => {
      const inner =
        kind === 'array'
          ? `${'['.repeat(depth)}1${']'.repeat(depth)}`
          : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      return `{${JSON.stringify(name)}:${inner}}`;
    });

/** Prototype-pollution attempts, around otherwise plausible fields. */
const pollutionArb = fc
  .tuple(
    fc.constantFrom(
      `{"__proto__":{"${POLLUTION_MARK}":true}}`,
      `{"constructor":{"prototype":{"${POLLUTION_MARK}":true}}}`,
      `{"__proto__":{"__proto__":{"${POLLUTION_MARK}":true}}}`,
      `{"prototype":{"${POLLUTION_MARK}":true}}`,
      `{"__proto__":{"email":"${LIVE[0]}","code":"123456","isVerified":true}}`,
      `[{"__proto__":{"${POLLUTION_MARK}":true}}]`,
    ),
    fc.constantFrom(...LIVE),
    wellFormedCode,
  )
  .map(([payload, email, code]) =>
    payload.startsWith('[') ? payload : `{"email":${JSON.stringify(email)},"code":"${code}",${payload.slice(1)}`,
  );

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A JWT with one character of its header or payload changed: its signature no longer matches. */
const tamperedJwt = (token: string) =>
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 63 })).map(([at, shift]) => {
    const signed = token.lastIndexOf('.');
    let i = at % signed;
    if (token[i] === '.') i -= 1;
    const next = BASE64URL[(BASE64URL.indexOf(token[i]!) + shift) % 64]!;
    return token.slice(0, i) + next + token.slice(i + 1);
  });

/** An opaque secret made wrong: a character changed, cut short, or lengthened. */
const tamperedOpaque = (secret: string) =>
  fc.oneof(
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 63 })).map(([at, shift]) => {
      const i = at % secret.length;
      const index = BASE64URL.indexOf(secret[i]!);
      const next = BASE64URL[((index < 0 ? 0 : index) + shift) % 64]!;
      return secret.slice(0, i) + (next === secret[i] ? '~' : next) + secret.slice(i + 1);
    }),
    fc.integer({ min: 1, max: 40 }).map((cut) => secret.slice(0, Math.max(1, secret.length - cut))),
    fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 1, maxLength: 4 }).map((more) => secret + more),
  );

/** An `Authorization` header and what it is worth to the route. */
interface AuthChoice {
  readonly header?: string;
  /** true: exactly a working credential for the route's guard; false: certainly none; undefined: a spelling variant. */
  readonly authorized?: boolean;
  readonly userId?: string;
}

function authArb(target: Endpoint, creds: Credentials): fc.Arbitrary<AuthChoice> {
  const refused = (header: string): AuthChoice => ({ header, authorized: false });
  const invalid: fc.Arbitrary<AuthChoice>[] = [
    fc.constant({ authorized: false }),
    headerText().map(refused),
    headerText().map((t) => refused(`Bearer ${t}`)),
    fc
      .constantFrom(
        '',
        'Bearer',
        'Bearer ',
        'Bearer  ',
        'bearer',
        'Basic Zm9vOmJhcg==',
        'Bearer null',
        'Bearer undefined',
      )
      .map(refused),
    fc
      .constantFrom('Bearer [object Object]', 'Token abc', 'Bearer\tabc', 'Bearer,abc', 'Bearer=abc', 'Bearerabc')
      .map(refused),
    tamperedJwt(creds.accessA).map((t) => refused(`Bearer ${t}`)),
    tamperedJwt(creds.accessB).map((t) => refused(`Bearer ${t}`)),
    fc.constantFrom(`Bearer ${creds.accessA}x`, `Bearer ${creds.accessA} x`, `Bearer x ${creds.accessA}`).map(refused),
    fc.constantFrom(`Basic ${creds.accessA}`, `${creds.accessA}`, `Bearer"${creds.accessA}"`).map(refused),
  ];
  // Credentials of another kind: refused wherever they are not the route's own.
  if (target.guard !== 'api-key') invalid.push(fc.constantFrom(`Bearer ${API_KEY}`).map(refused));
  invalid.push(fc.constantFrom(`Bearer ${creds.refreshA}`, `Bearer ${creds.mfaB}`).map(refused));
  if (target.guard === 'api-key') {
    invalid.push(tamperedOpaque(API_KEY).map((k) => refused(`Bearer ${k}`)));
    invalid.push(fc.constantFrom(`Bearer ${creds.accessA}`).map(refused));
    const valid = fc.oneof(
      fc.constant<AuthChoice>({ header: `Bearer ${API_KEY}`, authorized: true }),
      fc.constantFrom(`bearer ${API_KEY}`, `BEARER  ${API_KEY} `).map((header): AuthChoice => ({ header })),
    );
    return fc.oneof({ weight: invalid.length, arbitrary: valid }, ...invalid);
  }
  if (target.noWorkingCredential) return fc.oneof(...invalid);
  const valid = fc.oneof(
    fc.constant<AuthChoice>({ header: `Bearer ${creds.accessA}`, authorized: true, userId: creds.userA }),
    fc.constant<AuthChoice>({ header: `Bearer ${creds.accessB}`, authorized: true, userId: creds.userB }),
    fc
      .constantFrom(`bearer ${creds.accessA}`, `BEARER  ${creds.accessA}\t`)
      .map((header): AuthChoice => ({ header, userId: creds.userA })),
  );
  // Routes that do not read Authorization (request-otp, verify-otp, totp/verify, health) get anything.
  // Half the time a working token, so bodies get past the guard as often as not.
  return fc.oneof({ weight: target.costly ? 1 : invalid.length, arbitrary: valid }, ...invalid);
}

/** Values a route reads, plausible or not. */
function plausible(creds: Credentials): Record<string, fc.Arbitrary<unknown>> {
  return {
    email: emailArb,
    code: codeArb,
    locale: localeArb,
    refresh_token: fc.oneof(
      trickyText(40),
      tamperedOpaque(creds.refreshA),
      fc.constant(creds.refreshA),
      fc.constant('r'.repeat(513)),
    ),
    token: fc.oneof(
      fc.constantFrom(creds.accessA, creds.mfaB, creds.refreshA, ''),
      tamperedJwt(creds.accessA),
      trickyText(40),
      fc.integer({ min: 8_193, max: 9_000 }).map((n) => 'x'.repeat(n)),
    ),
    token_type_hint: fc.oneof(
      fc.constantFrom('access_token', 'refresh_token', 'ACCESS_TOKEN', '', 'mfa'),
      trickyText(12),
    ),
    mfa_token: fc.oneof(
      fc.constantFrom(creds.mfaB, creds.accessA, ''),
      tamperedJwt(creds.mfaB),
      trickyText(40),
      fc.integer({ min: 2_049, max: 9_000 }).map((n) => 'x'.repeat(n)),
    ),
    backup_code: fc.oneof(fc.stringMatching(/^[A-Z0-9]{5}-[A-Z0-9]{5}$/), trickyText(16)),
    end_other_sessions: fc.oneof(fc.boolean(), fc.constantFrom('true', 1, 0, null)),
  };
}

/** Known fields (plausible, or any JSON at all) in any combination, plus extra keys. */
function fieldsBodyArb(target: Endpoint, creds: Credentials): fc.Arbitrary<string> {
  const values = plausible(creds);
  const names = target.fields.length > 0 ? target.fields : ['email', 'code'];
  const known = fc.array(
    fc
      .constantFrom(...names)
      .chain((name) =>
        fc
          .oneof({ weight: 3, arbitrary: values[name]!.map(jsonOf) }, { weight: 1, arbitrary: jsonArb })
          .map((value) => [name, value] as const),
      ),
    { maxLength: 3 },
  );
  const extra = fc.array(fc.tuple(keyArb, jsonArb), { maxLength: 3 });
  return fc
    .tuple(known, extra, fc.boolean())
    .map(([fields, more, extraFirst]) => render({ entries: extraFirst ? [...more, ...fields] : [...fields, ...more] }));
}

function bodyArb(target: Endpoint, creds: Credentials): fc.Arbitrary<string | undefined> {
  const notJson = fc.oneof(
    trickyText(40),
    fc.constantFrom(
      '',
      '{',
      '[',
      '{"email":',
      'nul',
      '{"a":1}}',
      '\ufeff{}',
      '{}\u0000',
      "{'email':'a@b.co'}",
      '{"email":"a@b.co",}',
    ),
  );
  return fc.oneof(
    { weight: 3, arbitrary: jsonArb.map(render) },
    { weight: 5, arbitrary: fieldsBodyArb(target, creds) },
    { weight: 2, arbitrary: deepBodyArb(target.fields.length > 0 ? target.fields : ['email']) },
    { weight: 1, arbitrary: pollutionArb },
    { weight: 1, arbitrary: notJson },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON; CHARSET=UTF-8',
  'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/json; charset=garbage',
  'application/json;;;', 'application/json; charset="utf-8', 'application/json, text/plain', 'application/vnd.api+json',
  'application/problem+json', 'application/x-www-form-urlencoded', 'multipart/form-data',
  'multipart/form-data; boundary=x', 'text/plain', 'text/html', 'application/xml', 'application/octet-stream', '*/*',
  '/', 'json', '', ' ', 'application/json; boundary=--',
]; // prettier-ignore
const contentTypeArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  { weight: 1, arbitrary: headerText(40) },
);

const hopArb = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('unknown', '', ' ', '_hidden', '::ffff:10.0.0.1', '[2001:db8::1]:443', '1.2.3.4:5678', '999.999.1.1'),
  fc.constantFrom('01.2.3.4', '1.2.3', 'fe80::1%eth0', '127.0.0.1', '::', '0.0.0.0', '[::1]', 'a'.repeat(300)),
  headerText(20),
);
const forwardedForArb = fc
  .tuple(fc.array(hopArb, { minLength: 1, maxLength: 6 }), fc.constantFrom(',', ', ', ' ,', ',,'))
  .map(([hops, separator]) => hops.join(separator));

const originArb = fc.oneof(
  fc.constantFrom(
    'null',
    'https://evil.example',
    'http://127.0.0.1',
    'http://localhost',
    '',
    'file://',
    'http://[::1]:80',
  ),
  headerText(30),
);

/** A Cookie header (or several lines): random pairs, duplicates, odd separators, the real refresh token tampered or wrapped. */
function cookieArb(creds: Credentials): fc.Arbitrary<readonly string[]> {
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constant(COOKIE) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        ` ${COOKIE}`,
        `${COOKIE} `,
        'OTP_REFRESH',
        `${COOKIE}2`,
        'otp-refresh',
        `__Host-${COOKIE}`,
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom('session', '', '=', ' ') },
    { weight: 1, arbitrary: headerText(12) },
  );
  const value = fc.oneof(
    { weight: 3, arbitrary: headerText(48) },
    { weight: 2, arbitrary: fc.constantFrom('', '""', '"abc"', '%', '%E0%A4%A', '%00', 'a%3Bb', 'undefined', 'null') },
    { weight: 1, arbitrary: fc.integer({ min: 600, max: 6_000 }).map((n) => 'r'.repeat(n)) },
    { weight: 2, arbitrary: tamperedOpaque(creds.refreshA) },
    { weight: 2, arbitrary: fc.constant(creds.refreshA) },
  );
  return fc
    .tuple(
      fc.array(fc.tuple(name, value), { minLength: 1, maxLength: 4 }),
      fc.constantFrom('; ', ';', ' ; ', ';;'),
      fc.boolean(),
    )
    .map(([pairs, separator, split]) => {
      const parts = pairs.map(([n, v]) => `${n}=${v}`);
      return split && parts.length > 1 ? parts : [parts.join(separator)];
    });
}

/**
 * Whether the app would take the real refresh token from this Cookie header (exactly one cookie of
 * that name, whose value is the token; the rule of refreshTokenFromCookie). Such a request would
 * rotate the token, so the fuzz adds `Sec-Fetch-Site: cross-site` to it, which must be refused.
 */
function carriesUsableRefresh(lines: readonly string[], refresh: string): boolean {
  const header = lines.join('; ');
  const count = header.split(';').filter((part) => part.slice(0, part.indexOf('=')).trim() === COOKIE).length;
  return count === 1 && parseCookie(header)[COOKIE] === refresh;
}

// ---- the suite ---------------------------------------------------------------------------------

const platforms: Platform[] = ['express', 'fastify'];
const cases = enabledBackends().flatMap((backend) => platforms.map((platform) => [backend, platform] as const));

describe.each(cases)('adversarial input against the sample app on %s / %s', (backend, platform) => {
  const runs = runsFor(backend);
  // Body parsing happens before any route code, whatever the store: the content-type and size
  // matrices cover every POST route on the first backend, and the routes that write elsewhere.
  const parserTargets =
    backend === enabledBackends()[0]
      ? POST_ENDPOINTS
      : POST_ENDPOINTS.filter((e) => ['/auth/request-otp', '/auth/verify-otp', '/auth/introspect'].includes(e.path));
  let sample: SampleHarness;
  let db: DataSource;
  let creds: Credentials;
  /** The state after the last request, reused as the next one's "before" (nothing else writes). */
  let last: Snapshot | undefined;
  /** The user id a@example.com got when first signed into (as "\u3000a@EXAMPLE.com\t"). */
  let firstSpelling: number | string;
  /** When setup last requested a code for an address (the resend cooldown is 1 s). */
  const requestedAt = new Map<string, number>();
  const afterCooldown = (email: string) =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, (requestedAt.get(email) ?? 0) + 1_100 - Date.now())));

  const http = () => sample.http();

  async function send(probe: Probe): Promise<Response> {
    const { method, path } = probe.endpoint;
    let req = method === 'get' ? http().get(path) : http().post(path);
    for (const [name, value] of Object.entries(probe.headers)) req = req.set(name, value);
    if (probe.cookies) req = req.set('Cookie', [...probe.cookies]);
    return probe.body === undefined ? await req : await req.send(probe.body);
  }

  /** Sends a probe and holds it to both invariants (and to the route's guard). */
  async function check(probe: Probe): Promise<Response> {
    const before = last ?? (await snapshot(db));
    last = undefined;
    const res = await send(probe);
    const after = await snapshot(db);
    last = after;
    const where = `${probe.endpoint.method.toUpperCase()} ${probe.endpoint.path} answered ${res.status}`;
    if (res.status >= 500 && !readinessDown(probe, res)) {
      throw new Error(`${where}: ${JSON.stringify(res.body).slice(0, 300)}`);
    }
    const polluted = Object.keys(Object.prototype).concat(POLLUTION_MARK in {} ? [POLLUTION_MARK] : []);
    if (polluted.length > 0) throw new Error(`${where} and Object.prototype now has ${polluted.join(', ')}`);
    if (res.status < 300 && probe.endpoint.guard !== undefined && probe.authorized === false) {
      throw new Error(`${where} without a working credential`);
    }
    const forbidden = changes(before, after).filter((c) => !allowed(probe, res.status)(c));
    if (forbidden.length > 0) {
      throw new Error(
        `${where} and changed the database: ${forbidden.map(describeChange).join('; ')}\n` +
          `  before ${fingerprint(before)}\n  after  ${fingerprint(after)}`,
      );
    }
    if (probe.endpoint.path === '/auth/totp/setup' && res.status === 200 && probe.principal.userId === creds.userA) {
      creds.secretA = (res.body as { secret: string }).secret; // a new pending secret for A
    }
    return res;
  }

  /** TOTP codes that could be right now (±2 steps), so the fuzz never guesses one by luck. */
  const liveTotp = (secret: string) => {
    const now = Math.floor(Date.now() / 1000);
    return new Set([-2, -1, 0, 1, 2].map((step) => generateSync({ secret, epoch: now + step * 30 })));
  };

  /** The principal of a JSON body, and its code made certainly wrong where it could be right. */
  function principalOf(text: string | undefined, auth: AuthChoice): { principal: Principal; body: string | undefined } {
    const parsed = bodyOf(text);
    const email = field(parsed, 'email');
    const mfa = field(parsed, 'mfa_token');
    const principal: Principal = {
      ...(typeof email === 'string' ? { addressKey: addressKey(email) } : {}),
      ...(mfa === creds.mfaB ? { userId: creds.userB } : auth.userId !== undefined ? { userId: auth.userId } : {}),
    };
    let body = text;
    const code = field(parsed, 'code');
    if (typeof code === 'string' && text !== undefined) {
      // The live email code of the address, and the TOTP codes of A's pending and B's active enrolment.
      const right = new Set([...liveTotp(creds.secretA), ...liveTotp(creds.secretB)]);
      const normalised = typeof email === 'string' ? email.trim().toLowerCase() : undefined;
      if (normalised !== undefined && sample.deliveredTo(normalised) > 0) right.add(sample.lastCode(normalised));
      if (right.has(code)) {
        body = text.split(JSON.stringify(code)).join(JSON.stringify(code === '000000' ? '000001' : '000000'));
      }
    }
    return { principal, body };
  }

  async function signIn(email: string): Promise<Response> {
    await http().post('/auth/request-otp').send({ email }).expect(200);
    return http()
      .post('/auth/verify-otp')
      .send({ email, code: sample.lastCode(email) })
      .expect(200);
  }

  beforeAll(async () => {
    sample = await startSample({
      backend,
      platform,
      env: {
        OTP_INTROSPECTION_API_KEYS: API_KEY,
        OTP_RESEND_COOLDOWN: '1',
        TRUST_PROXY: '1',
        RATE_LIMITS_ENABLED: 'true',
        RATE_LIMIT_SEND_PER_EMAIL: '10000000/60',
        RATE_LIMIT_SEND_PER_EMAIL_DAILY: '10000000/86400',
        RATE_LIMIT_SEND_PER_IP: '10000000/60',
        RATE_LIMIT_SEND_GLOBAL: '10000000/60',
        RATE_LIMIT_VERIFY_PER_EMAIL: '10000000/60',
        RATE_LIMIT_VERIFY_PER_IP: '10000000/60',
        RATE_LIMIT_VERIFY_GLOBAL: '10000000/60',
      },
    });
    db = sample.app.get(DataSource);

    // A: signed in, with a pending TOTP enrolment (so totp/confirm guesses reach the counters).
    const a = await signIn(USER_A);
    const accessA = (a.body as { access_token: string }).access_token;
    const setupA = await http().post('/auth/totp/setup').set('authorization', `Bearer ${accessA}`).expect(200);
    const userA = (await http().get('/protected').set('authorization', `Bearer ${accessA}`).expect(200)).body as {
      user_id: string;
    };

    // B: TOTP active, a session that passed it, and an open second-factor challenge.
    const b0 = (await signIn(USER_B)).body as { access_token: string };
    const setupB = await http().post('/auth/totp/setup').set('authorization', `Bearer ${b0.access_token}`).expect(200);
    const secretB = (setupB.body as { secret: string }).secret;
    const confirmed = await http()
      .post('/auth/totp/confirm')
      .set('authorization', `Bearer ${b0.access_token}`)
      .send({ code: generateSync({ secret: secretB }) })
      .expect(200);
    const accessB = (confirmed.body as { access_token: string }).access_token;
    const userB = (await http().get('/protected').set('authorization', `Bearer ${accessB}`).expect(200)).body as {
      user_id: string;
    };
    // The challenge is opened in-process (a second emailed code would wait out the resend cooldown).
    const service = sample.app.get(OtpAuthService);
    const challenge = await service.signInWithFirstFactor((await service.findUserByEmail(USER_B))!, ['pwd']);
    if (!('mfaToken' in challenge)) throw new Error('expected a second-factor challenge for B');
    recordSecret(challenge.mfaToken);

    for (const email of LIVE) await http().post('/auth/request-otp').send({ email }).expect(200);
    // The look-alikes' target: an existing account with a live code.
    await db.getRepository(User).insert({ email: VICTIM, isVerified: true });
    await http().post('/auth/request-otp').send({ email: VICTIM }).expect(200);
    requestedAt.set(VICTIM, Date.now());
    // An account for a@example.com, signed into with one spelling (the test uses others).
    await http().post('/auth/request-otp').send({ email: '\u3000a@EXAMPLE.com\t' }).expect(200);
    requestedAt.set('a@example.com', Date.now());
    const spelt = await http()
      .post('/auth/verify-otp')
      .send({ email: ' A@example.com', code: sample.lastCode('a@example.com') })
      .expect(200);
    firstSpelling = (
      (
        await http()
          .get('/verified-only')
          .set('authorization', `Bearer ${(spelt.body as { access_token: string }).access_token}`)
          .expect(200)
      ).body as { user_id: number | string }
    ).user_id;

    creds = {
      accessA,
      refreshA: refreshCookie(a)!,
      userA: userA.user_id,
      accessB,
      userB: userB.user_id,
      mfaB: challenge.mfaToken,
      secretA: (setupA.body as { secret: string }).secret,
      secretB,
    };
  }, 60_000);
  afterAll(async () => {
    await sample?.close();
  });
  beforeEach(() => {
    last = undefined;
  });

  it('fuzzed JSON bodies on every route, with and without credentials: no 5xx, no change when refused', async () => {
    const probeArb = fc
      .constantFrom(...ENDPOINTS)
      .chain((target) => fc.tuple(fc.constant(target), authArb(target, creds), bodyArb(target, creds)));
    await fc.assert(
      fc.asyncProperty(probeArb, async ([target, auth, text]) => {
        const { principal, body } = principalOf(text, auth);
        await check({
          endpoint: target,
          headers: {
            ...(auth.header !== undefined ? { authorization: auth.header } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          body,
          principal,
          authorized: target.guard === 'refresh-cookie' ? false : auth.authorized,
        });
      }),
      params(runs.bodies),
    );
  }, 120_000);

  it('fuzzed headers and cookies on every route: no 5xx, no change when refused', async () => {
    const headersArb = (target: Endpoint) =>
      fc.record({
        auth: authArb(target, creds),
        cookies: fc.option(cookieArb(creds), { nil: undefined }),
        contentType: fc.option(contentTypeArb, { nil: undefined }),
        forwardedFor: fc.option(forwardedForArb, { nil: undefined }),
        origin: fc.option(originArb, { nil: undefined }),
        fetchSite: fc.option(
          fc.oneof(fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none', 'CROSS-SITE'), headerText(12)),
          {
            nil: undefined,
          },
        ),
        encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, gzip'), {
          nil: undefined,
        }),
      });
    const probeArb = fc
      .constantFrom(...ENDPOINTS)
      .chain((target) =>
        fc.tuple(
          fc.constant(target),
          headersArb(target),
          fc.oneof(fieldsBodyArb(target, creds), fc.constant(undefined)),
        ),
      );
    await fc.assert(
      fc.asyncProperty(probeArb, async ([target, h, text]) => {
        const { principal, body } = principalOf(text, h.auth);
        // The untampered refresh cookie, where the app would accept it, only ever goes cross-site.
        const usable = h.cookies !== undefined && carriesUsableRefresh(h.cookies, creds.refreshA);
        await check({
          endpoint: target,
          headers: {
            ...(h.auth.header !== undefined ? { authorization: h.auth.header } : {}),
            ...(h.contentType !== undefined ? { 'content-type': h.contentType } : {}),
            ...(h.forwardedFor !== undefined ? { 'x-forwarded-for': h.forwardedFor } : {}),
            ...(h.origin !== undefined ? { origin: h.origin } : {}),
            ...(h.fetchSite !== undefined || usable ? { 'sec-fetch-site': usable ? 'cross-site' : h.fetchSite! } : {}),
            ...(h.encoding !== undefined ? { 'content-encoding': h.encoding } : {}),
          },
          ...(h.cookies !== undefined ? { cookies: h.cookies } : {}),
          body: body === undefined ? undefined : Buffer.from(body),
          principal,
          authorized: target.guard === 'refresh-cookie' ? false : h.auth.authorized,
        });
      }),
      params(runs.headers),
    );
  }, 120_000);

  it('unicode, full-width, bidi, NUL and huge emails and codes: no 5xx, 401 moves only that address\u2019s counters', async () => {
    const probeArb = fc.record({
      target: fc.constantFrom(endpoint('/auth/request-otp'), endpoint('/auth/verify-otp')),
      email: emailArb,
      code: fc.option(codeArb, { nil: undefined }),
      locale: fc.option(localeArb, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(probeArb, async ({ target, email, code, locale }) => {
        const text = JSON.stringify({
          email,
          ...(code !== undefined ? { code } : {}),
          ...(locale !== undefined ? { locale } : {}),
        });
        const { principal, body } = principalOf(text, {});
        await check({ endpoint: target, headers: { 'content-type': 'application/json' }, body, principal });
      }),
      params(runs.strings),
    );
  }, 120_000);

  it('second-factor routes with well-formed wrong codes and tampered tokens: only the user\u2019s counters move', async () => {
    const backupLike = fc.oneof(
      fc.stringMatching(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/),
      fc.stringMatching(/^[a-z0-9]{10}$/),
      trickyText(16),
    );
    const probeArb = fc.record({
      target: fc.constantFrom(
        '/auth/totp/confirm',
        '/auth/totp/disable',
        '/auth/totp/backup-codes',
        '/auth/totp/verify',
      ),
      code: fc.option(
        fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^\d{6,8}$/) }, { weight: 1, arbitrary: codeArb }),
        {
          nil: undefined,
        },
      ),
      backup: fc.option(backupLike, { nil: undefined }),
      mfa: fc.oneof(
        { weight: 3, arbitrary: fc.constant(creds.mfaB) },
        tamperedJwt(creds.mfaB),
        fc.constant(creds.accessB),
      ),
    });
    await fc.assert(
      fc.asyncProperty(probeArb, async ({ target, code, backup, mfa }) => {
        const verify = target === '/auth/totp/verify';
        const user = target === '/auth/totp/confirm' ? 'A' : 'B';
        let wrong = code;
        if (typeof code === 'string' && liveTotp(user === 'A' ? creds.secretA : creds.secretB).has(code)) {
          wrong = code === '000000' ? '000001' : '000000';
        }
        const text = JSON.stringify({
          ...(wrong !== undefined ? { code: wrong } : {}),
          ...(backup !== undefined ? { backup_code: backup } : {}),
          ...(verify ? { mfa_token: mfa } : {}),
        });
        const userId = verify
          ? mfa === creds.mfaB
            ? creds.userB
            : undefined
          : user === 'A'
            ? creds.userA
            : creds.userB;
        await check({
          endpoint: endpoint(target),
          headers: {
            'content-type': 'application/json',
            ...(verify ? {} : { authorization: `Bearer ${user === 'A' ? creds.accessA : creds.accessB}` }),
          },
          body: text,
          principal: userId !== undefined ? { userId } : {},
        });
      }),
      params(runs.factors),
    );
  }, 120_000);

  it('bodies nested thousands deep are refused with 4xx on every POST route, not a stack overflow', async () => {
    for (const target of POST_ENDPOINTS) {
      const name = target.fields[0] ?? 'x';
      for (const body of [
        `{${JSON.stringify(name)}:${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
        `{"x":${'{"a":'.repeat(15_000)}1${'}'.repeat(15_000)}}`,
      ]) {
        const res = await check({
          endpoint: target,
          headers: { 'content-type': 'application/json' },
          body,
          principal: {},
        });
        // Routes behind a guard refuse the missing token first; the others refuse the body.
        expect({ path: target.path, status: res.status }).toEqual({
          path: target.path,
          status: target.guard === 'access' ? 401 : 400,
        });
      }
    }
  }, 60_000);

  it('a body over the platform limit answers 413 on every POST route, and changes nothing', async () => {
    // Express's JSON and form parsers stop at 100 kB; Fastify's body limit is 1 MiB for every type.
    const limit = platform === 'express' ? 100 * 1024 : 1024 * 1024;
    const pad = 'x'.repeat(limit + 1024);
    const bodies: [string, string][] = [
      ['application/json', JSON.stringify({ email: LIVE[0], code: '123456', token: 'x', pad })],
      ['application/x-www-form-urlencoded', `email=${encodeURIComponent(LIVE[0])}&pad=${pad}`],
      // Express does not read text/plain bodies at all (they never reach a route); Fastify does, within its limit.
      ...(platform === 'fastify' ? ([['text/plain', pad]] as [string, string][]) : []),
    ];
    for (const target of parserTargets) {
      for (const [type, body] of bodies) {
        const res = await check({
          endpoint: target,
          headers: {
            'content-type': type,
            // A working token gets past the guards (were the limit missed); logout routes never get one.
            authorization: `Bearer ${target.noWorkingCredential ? 'not-a-token' : creds.accessA}`,
          },
          body,
          principal: {},
        });
        expect({ path: target.path, type, status: res.status }).toEqual({ path: target.path, type, status: 413 });
      }
    }
  }, 60_000);

  it('wrong, missing and odd content types: a clear 4xx, or the body read correctly', async () => {
    const unique = (() => {
      let n = 0;
      return () => `ctype-${platform}-${(n += 1)}@example.com`;
    })();
    const kinds: { type?: string; encode: (fields: Record<string, string>) => string | Buffer; encoding?: string }[] = [
      { type: 'text/plain', encode: (f) => JSON.stringify(f) },
      { type: 'text/plain; charset=utf-8', encode: (f) => new URLSearchParams(f).toString() },
      { type: 'application/x-www-form-urlencoded', encode: (f) => new URLSearchParams(f).toString() },
      { type: 'application/x-www-form-urlencoded', encode: (f) => JSON.stringify(f) },
      { type: 'application/x-www-form-urlencoded; charset=utf-16', encode: (f) => new URLSearchParams(f).toString() },
      {
        type: 'multipart/form-data; boundary=XyZ',
        encode: (f) =>
          Object.entries(f)
            .map(([k, v]) => `--XyZ\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
            .join('') + '--XyZ--\r\n',
      },
      { type: 'multipart/form-data', encode: (f) => JSON.stringify(f) },
      { encode: (f) => Buffer.from(JSON.stringify(f)) },
      { type: 'application/octet-stream', encode: (f) => Buffer.from(JSON.stringify(f)) },
      { type: 'application/xml', encode: (f) => `<body>${Object.keys(f).join('')}</body>` },
      { type: 'application/json; charset=utf-16', encode: (f) => JSON.stringify(f) },
      { type: 'application/json; charset=utf-16le', encode: (f) => Buffer.from(JSON.stringify(f), 'utf16le') },
      { type: 'application/json; charset=iso-8859-1', encode: (f) => JSON.stringify(f) },
      { type: 'application/json; charset=nonsense', encode: (f) => JSON.stringify(f) },
      { type: 'application/json; charset="utf-8', encode: (f) => JSON.stringify(f) },
      { type: 'application/json;;;===', encode: (f) => JSON.stringify(f) },
      { type: 'Application/JSON ; Charset=UTF-8', encode: (f) => JSON.stringify(f) },
      { type: 'application/vnd.api+json', encode: (f) => JSON.stringify(f) },
      { type: 'application/json', encode: (f) => gzipSync(JSON.stringify(f)), encoding: 'gzip' },
      { type: 'application/json', encode: (f) => JSON.stringify(f), encoding: 'gzip' },
      { type: 'application/json', encode: (f) => JSON.stringify(f), encoding: 'x-unknown' },
      { type: 'application/json', encode: (f) => `\ufeff${JSON.stringify(f)}` },
    ];
    const seen: string[] = [];
    for (const target of parserTargets) {
      for (const kind of kinds) {
        const email = unique();
        const fields: Record<string, string> =
          target.path === '/auth/introspect'
            ? { token: creds.accessA }
            : target.path === '/auth/request-otp'
              ? { email }
              : { email, code: '123456' };
        // Body-less routes get no working token: their parsers still run, their handlers do not.
        const working = target.fields.length > 0 && !target.noWorkingCredential;
        const auth = target.path === '/auth/introspect' ? API_KEY : working ? creds.accessA : 'not-a-token';
        const res = await check({
          endpoint: target,
          headers: {
            authorization: `Bearer ${auth}`,
            ...(kind.type !== undefined ? { 'content-type': kind.type } : {}),
            ...(kind.encoding !== undefined ? { 'content-encoding': kind.encoding } : {}),
          },
          body: kind.encode(fields),
          principal: { addressKey: addressKey(email), userId: creds.userA },
        });
        seen.push(
          `${target.path} ${kind.type ?? '(none)'}${kind.encoding ? ` +${kind.encoding}` : ''} → ${res.status}`,
        );
        expect([200, 400, 401, 403, 404, 409, 413, 415]).toContain(res.status);
        // Read correctly when accepted: the code went to exactly the address sent, and introspection saw the token.
        if (target.path === '/auth/request-otp' && res.status === 200) expect(sample.deliveredTo(email)).toBe(1);
        if (target.path === '/auth/request-otp' && res.status !== 200) expect(sample.deliveredTo(email)).toBe(0);
        if (target.path === '/auth/introspect' && res.status === 200) expect(res.body).toMatchObject({ active: true });
      }
    }
    // RFC 7662 §2.1: introspection takes form-encoded bodies on both platforms.
    expect(seen).toContain('/auth/introspect application/x-www-form-urlencoded → 200');
  }, 60_000);

  /** A request that signs in through `check`, so it is held to the invariants too. */
  async function requestAndVerify(asRequested: string, asPresented: string, normalised: string): Promise<Response> {
    const json = { 'content-type': 'application/json' };
    const principal = { addressKey: addressKey(normalised) };
    const requested = await check({
      endpoint: endpoint('/auth/request-otp'),
      headers: json,
      body: JSON.stringify({ email: asRequested }),
      principal,
    });
    expect(requested.status).toBe(200);
    return check({
      endpoint: endpoint('/auth/verify-otp'),
      headers: json,
      body: JSON.stringify({ email: asPresented, code: sample.lastCode(normalised) }),
      principal,
      rightCode: true,
    });
  }

  async function whoAmI(res: Response): Promise<{ email: string; user_id: number | string }> {
    const token = (res.body as { access_token: string }).access_token;
    const me = await http().get('/verified-only').set('authorization', `Bearer ${token}`).expect(200);
    return me.body as { email: string; user_id: number | string };
  }

  const countUsers = async () =>
    Number(((await db.query('SELECT COUNT(*) AS n FROM users')) as { n: number | string }[])[0]!.n);

  it('case and surrounding whitespace reach the same account (e.g. "A@Example.COM " and "a@example.com")', async () => {
    const usersBefore = await countUsers();
    // a@example.com signed up in setup as "\u3000a@EXAMPLE.com\t" / " A@example.com".
    await afterCooldown('a@example.com');
    const before = sample.deliveredTo('a@example.com');
    const res = await requestAndVerify('A@Example.COM ', 'a@example.com', 'a@example.com');
    expect(res.status).toBe(200);
    expect(sample.deliveredTo('a@example.com')).toBe(before + 1);
    expect(sample.deliveredTo('A@Example.COM ')).toBe(0);
    expect(await whoAmI(res)).toMatchObject({ email: 'a@example.com', user_id: firstSpelling });

    // Generated: letters' case scrambled, whitespace that trim() removes (NBSP, U+3000, BOM…) around.
    const variant = fc.record({
      upper: fc.array(fc.boolean(), { minLength: 32, maxLength: 32 }),
      left: trimmable,
      right: trimmable,
    });
    const apply = (base: string, v: { upper: boolean[]; left: string; right: string }) =>
      v.left + Array.from(base, (ch, i) => (v.upper[i % 32] ? ch.toUpperCase() : ch)).join('') + v.right;
    let n = 0;
    const bases: string[] = [];
    await fc.assert(
      fc.asyncProperty(variant, variant, async (asRequested, asPresented) => {
        n += 1;
        const base = `case-${n}-${Date.now().toString(36)}@example.com`;
        const signedIn = await requestAndVerify(apply(base, asRequested), apply(base, asPresented), base);
        expect(signedIn.status).toBe(200);
        expect(sample.deliveredTo(base)).toBe(1);
        expect((await whoAmI(signedIn)).email).toBe(base);
        bases.push(base);
      }),
      params(runs.variants),
    );
    // One row per address, stored normalised: a@example.com's sign-in made none.
    const users = (await db.query('SELECT email FROM users')) as { email: string }[];
    for (const base of [...bases, 'a@example.com']) {
      expect(users.filter((u) => u.email.toLowerCase() === base)).toEqual([{ email: base }]);
    }
    expect((await countUsers()) - usersBefore).toBe(bases.length);
  }, 60_000);

  /**
   * Look-alikes: the library trims, lower-cases and composes (NFC; normalizeEmail), and nothing
   * more: no NFKC folding, no confusable mapping. A look-alike that passes @IsEmail is
   * therefore another address: its code goes to that address, and it signs into that address's
   * own account. The one look-alike toLowerCase maps onto ASCII is the Kelvin sign (K → k): its
   * code goes to the ASCII address's mailbox, so only that mailbox's owner can use it. The
   * invariant checked: an account is entered only with a code delivered to exactly its address.
   */
  async function tryLookAlike(variant: string, victimId: string): Promise<string> {
    const normalised = variant.trim().toLowerCase().normalize('NFC');
    const deliveredBefore = sample.deliveredTo(normalised);
    const victimBefore = sample.deliveredTo(VICTIM);
    const json = { 'content-type': 'application/json' };
    const principal = { addressKey: addressKey(variant) };
    const requested = await check({
      endpoint: endpoint('/auth/request-otp'),
      headers: json,
      body: JSON.stringify({ email: variant }),
      principal,
    });
    expect([200, 400, 429]).toContain(requested.status);
    if (requested.status !== 200) return `${requested.status} refused`;
    expect(sample.deliveredTo(normalised)).toBe(deliveredBefore + 1);
    if (normalised !== VICTIM) {
      expect(sample.deliveredTo(VICTIM)).toBe(victimBefore);
      // The victim's live code opens neither the look-alike nor, through it, the victim's account.
      const code = sample.lastCode(normalised);
      const victimCode = sample.lastCode(VICTIM);
      const res = await check({
        endpoint: endpoint('/auth/verify-otp'),
        headers: json,
        body: JSON.stringify({ email: variant, code: victimCode === code ? '000000' : victimCode }),
        principal,
      });
      expect(res.status).toBe(401);
    }
    const verified = await check({
      endpoint: endpoint('/auth/verify-otp'),
      headers: json,
      body: JSON.stringify({ email: variant, code: sample.lastCode(normalised) }),
      principal,
      rightCode: true,
    });
    // 401: a case- or accent-insensitive collation (MariaDB's default) already holds an address
    // it deems equal, so this one cannot have an account of its own (its code is spent).
    expect([200, 401]).toContain(verified.status);
    if (verified.status !== 200) return '401 (collation)';
    const me = await whoAmI(verified);
    expect(me.email).toBe(normalised);
    if (normalised !== VICTIM) expect(String(me.user_id)).not.toBe(victimId);
    return normalised === VICTIM ? 'the same account' : 'a different account';
  }

  it('unicode look-alikes of an address are refused or a different account, never the ASCII one', async () => {
    const victimId = String((await db.getRepository(User).findOneByOrFail({ email: VICTIM })).id);
    const outcomes: Record<string, string> = {};
    const listed: [string, string][] = [
      ['Cyrillic е', 'k\u0435vin@example.com'],
      ['Cyrillic і', 'kev\u0456n@example.com'],
      ['Greek ο in the domain', 'kevin@example.c\u03bfm'],
      ['full-width ＠', 'kevin\uff20example.com'],
      ['full-width ｋ', '\uff4bevin@example.com'],
      ['NFD í (i + combining acute)', 'kevi\u0301n@example.com'],
      ['zero-width space', 'kev\u200bin@example.com'],
      ['right-to-left mark', 'kevin\u200f@example.com'],
      ['right-to-left override', '\u202ekevin@example.com'],
      ['soft hyphen', 'kev\u00adin@example.com'],
      ['dotless ı', 'kev\u0131n@example.com'],
      ['dotted İ (lower-cases to i + U+0307)', 'KEV\u0130N@example.com'],
      ['ideographic full stop', 'kevin@example\u3002com'],
      ['NUL', 'kevin\u0000@example.com'],
    ];
    for (const [label, variant] of listed) outcomes[label] = await tryLookAlike(variant, victimId);
    expect(outcomes).toMatchObject({ NUL: '400 refused', 'full-width ＠': '400 refused' });
    // NFD and precomposed í are one address (NFC): the precomposed spelling meets the cooldown
    // of the code the NFD spelling just used, instead of getting a code row of its own.
    if (outcomes['NFD í (i + combining acute)'] === 'a different account') {
      const precomposed = await check({
        endpoint: endpoint('/auth/request-otp'),
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'kev\u00edn@example.com' }),
        principal: { addressKey: addressKey('kev\u00edn@example.com') },
      });
      expect(precomposed.status).toBe(429);
    }
    for (const outcome of Object.values(outcomes)) {
      expect(['400 refused', '401 (collation)', 'a different account']).toContain(outcome);
    }

    // Generated: confusable substitutions, invisible characters and combining marks, case changes.
    const CONFUSABLE: Readonly<Record<string, readonly string[]>> = {
      k: ['\u043a', '\u03ba', '\uff4b'],
      e: ['\u0435', '\u00e9', 'e\u0301', '\u212e'],
      v: ['\u03bd', '\u0475', '\uff56'],
      i: ['\u0456', '\u0131', '\u00ed', 'i\u0301', '\u0269'],
      n: ['\u0578', '\u043f', '\u0144'],
      x: ['\u0445', '\u00d7'],
      a: ['\u0430', '\u00e0'],
      m: ['\u043c', '\u217f'],
      p: ['\u0440'],
      l: ['\u04cf', '\u217c', '1'],
      c: ['\u0441', '\u03f2', '\u217d'],
      o: ['\u043e', '\u03bf', '0'],
      '@': ['\uff20', '\ufe6b'],
      '.': ['\uff0e', '\u3002'],
    };
    const INVISIBLE = [
      '\u200b',
      '\u200c',
      '\u200d',
      '\u2060',
      '\u00ad',
      '\u200e',
      '\u200f',
      '\u202e',
      '\u0301',
      '\u0308',
    ];
    const edit = fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('confusable', 'invisible', 'upper'));
    const lookAlike = fc
      .array(edit, { minLength: 1, maxLength: 3 })
      .map((edits) =>
        edits.reduce((text, [at, pick, op]) => {
          const i = at % text.length;
          if (op === 'invisible') return insertAt(text, i, INVISIBLE[pick % INVISIBLE.length]!);
          if (op === 'upper') return text.slice(0, i) + text[i]!.toUpperCase() + text.slice(i + 1);
          const options = CONFUSABLE[text[i]!];
          return options ? text.slice(0, i) + options[pick % options.length]! + text.slice(i + 1) : text;
        }, VICTIM),
      )
      .filter((text) => text.trim().toLowerCase() !== VICTIM);
    await fc.assert(
      fc.asyncProperty(lookAlike, async (variant) => {
        await tryLookAlike(variant, victimId);
      }),
      params(runs.variants),
    );

    // Last, as it spends the victim's live code: the Kelvin sign lower-cases to ASCII k, so this
    // spelling is the victim's own address. Its code goes to the victim's mailbox, nowhere else.
    await afterCooldown(VICTIM);
    expect(await tryLookAlike('\u212aevin@example.com', victimId)).toBe('the same account');
  }, 60_000);
});
