#!/usr/bin/env node
// The packed-package test: the packages as users get them, in apps outside this workspace.
//
// 1. `npm pack` every package under libs/ (its prepack builds it).
// 2. In a temporary folder (no node_modules above it, so nothing hoisted here is visible), create
//    an ESM app exactly as `nest new` generates it and a CommonJS app from the same schematics.
// 3. Run the Install commands of the package README (read from it, so docs and test cannot drift;
//    the only change is the tarball's path in place of the package name) and write the README's
//    Quick start files into both apps; build them with their own Nest CLI, strict TypeScript and
//    skipLibCheck off.
// 4. Start each app and, over real HTTP with codes delivered over real SMTP: sign in, GET /me
//    behind VerifiedUserGuard and the global guard, refresh, enrol TOTP, log out (token refused
//    afterwards), sign in again with the second factor. ESM: Express on SQLite without
//    @nestjs/swagger; CommonJS: Fastify on PostgreSQL with it (the routes must be documented).
// 5. A short secret and a mistyped option must stop startup with the documented message.
// 6. The client SDK as its README installs it, in a plain Node folder: the README's `sign-in.mjs`
//    signs in against the ESM app with a mailed code, calls GET /me, refreshes and signs out;
//    `require()` loads the CommonJS build.
// Prints the tarball size, the installed size and the cold start time.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { SMTPServer } = require('smtp-server');
const OTPAuth = require('otpauth');
const pg = require('pg');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const log = (message) => console.log(`[consumer] ${message}`);
const started = Date.now();

function run(command, args, options = {}) {
  const t = Date.now();
  try {
    const out = execFileSync(command, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
      ...options,
      env: { ...cleanEnv(), ...options.env },
    });
    return { out, ms: Date.now() - t };
  } catch (error) {
    throw new Error(
      `${command} ${args.join(' ')} failed in ${options.cwd}:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`.slice(
        -8000,
      ),
      { cause: error },
    );
  }
}

/** The environment without the workspace's npm settings, as a user's shell would have it. */
function cleanEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^npm_/i.test(key) || key.startsWith('OTP_')) delete env[key];
    // A production NODE_ENV would skip devDependencies (no Nest CLI); NODE_PATH would reach the workspace.
    if (['INIT_CWD', 'NODE_OPTIONS', 'NODE_ENV', 'NODE_PATH'].includes(key)) delete env[key];
  }
  env.PATH = (env.PATH ?? '')
    .split(path.delimiter)
    .filter((p) => !p.startsWith(root))
    .join(path.delimiter);
  return env;
}

/** Every process the test started and that still runs: killed when the test fails or is cancelled. */
const children = new Set();

/**
 * `runAsync`, once more with fresh registry metadata when npm's cached metadata was stale: the
 * generated apps take the newest releases, and a cached packument can lack a version that a newer
 * one already depends on (`ETARGET`). The command itself stays the README's.
 */
async function runInstall(command, args, options = {}) {
  try {
    return await runAsync(command, args, options);
  } catch (error) {
    if (!/ETARGET|notarget/.test(error.message)) throw error;
    log(`stale npm metadata (ETARGET); once more with npm_config_prefer_online=true: ${command} ${args.join(' ')}`);
    return runAsync(command, args, { ...options, env: { ...options.env, npm_config_prefer_online: 'true' } });
  }
}

/** `run`, without blocking the other app's steps. */
function runAsync(command, args, options = {}) {
  const t = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...options,
      env: { ...cleanEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    children.add(child);
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      if (code === 0) resolve({ out, ms: Date.now() - t });
      else reject(new Error(`${command} ${args.join(' ')} failed in ${options.cwd}:\n${out}\n${err}`.slice(-8000)));
    });
  });
}

const duKb = (dir) => Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);

// --- the README: install commands and quick-start files -------------------------------------------------
const readmePath = path.join(root, 'libs/otp-auth/README.md');
const readme = fs.readFileSync(readmePath, 'utf8');
const installBlocks = new Map(
  [...readme.matchAll(/<!-- consumer-test:install (\w+) -->\n```bash\n([\s\S]*?)```/g)].map((m) => [
    m[1],
    m[2]
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#')),
  ]),
);
const files = [...readme.matchAll(/<!-- consumer-test:file (\S+)(?: (\w+))? -->\n```ts\n([\s\S]*?)```/g)].map((m) => ({
  path: m[1],
  variant: m[2],
  text: m[3],
}));
for (const needed of ['core', 'sqlite', 'postgres', 'smtp', 'fastify', 'swagger']) {
  if (!installBlocks.has(needed)) throw new Error(`README.md has no "consumer-test:install ${needed}" block`);
}
if (files.length < 5) throw new Error('README.md lost its quick-start files (consumer-test:file markers)');

// The client SDK's README: its install command and its Node sign-in script.
const clientReadme = fs.readFileSync(path.join(root, 'libs/otp-auth-client/README.md'), 'utf8');
const clientInstall = clientReadme
  .match(/<!-- consumer-test:install client -->\n```bash\n([\s\S]*?)```/)?.[1]
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));
const clientScript = clientReadme.match(/<!-- consumer-test:file sign-in\.mjs -->\n```js\n([\s\S]*?)```/)?.[1];
if (!clientInstall?.length || !clientScript) {
  throw new Error('libs/otp-auth-client/README.md lost its consumer-test:install client or sign-in.mjs block');
}

// --- a folder with nothing above it ------------------------------------------------------------------
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otp-consumer-'));
for (let dir = path.dirname(work); ; dir = path.dirname(dir)) {
  if (fs.existsSync(path.join(dir, 'node_modules')) || fs.existsSync(path.join(dir, 'package.json'))) {
    throw new Error(`${dir} has a node_modules or package.json that the consumer apps would see; set TMPDIR`);
  }
  if (dir === path.dirname(dir)) break;
}
for (const global of ['.node_modules', '.node_libraries'].map((d) => path.join(os.homedir(), d))) {
  if (fs.existsSync(global)) throw new Error(`${global} is on Node's global module path; the apps would see it`);
}
log(`working in ${work}`);

// --- 1. pack -------------------------------------------------------------------------------------------
const tarballDir = path.join(work, 'tarballs');
fs.mkdirSync(tarballDir);
const tarballs = new Map();
for (const dir of fs.readdirSync(path.join(root, 'libs'))) {
  const pkgDir = path.join(root, 'libs', dir);
  if (!fs.existsSync(path.join(pkgDir, 'package.json'))) continue;
  const { out } = run('npm', ['pack', '--json', '--pack-destination', tarballDir], { cwd: pkgDir });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  tarballs.set(info.name, {
    file: path.join(tarballDir, info.filename),
    version: info.version,
    size: info.size,
    unpacked: info.unpackedSize,
  });
  log(
    `packed ${info.name}@${info.version}: ${(info.size / 1024).toFixed(0)} kB, ${(info.unpackedSize / 1024).toFixed(0)} kB unpacked, ${info.entryCount} files`,
  );
}

/** A README command with each workspace package name replaced by its tarball. */
function withTarballs(command) {
  let out = command;
  for (const [name, { file }] of tarballs) {
    out = out.replace(new RegExp(`(?<=\\s)${name.replace(/[/]/g, '\\/')}(?=\\s|$)`, 'g'), file);
    // A spec such as nestjs-otp-auth@^1 would come from the registry instead of the tarball.
    if (new RegExp(`(?<=\\s)${name.replace(/[/]/g, '\\/')}@`).test(out)) {
      throw new Error(`README command "${command}" names ${name} with a version; the test cannot use the tarball`);
    }
  }
  return out;
}

// --- 2. scaffold -----------------------------------------------------------------------------------------
const nestCli = path.join(root, 'node_modules/@nestjs/cli/bin/nest.js');
const schematicsCli = path.join(root, 'node_modules/.bin/schematics');
const apps = [
  {
    name: 'esm-app',
    kind: 'ESM (nest new)',
    platform: 'express',
    database: 'sqlite',
    install: ['core', 'sqlite', 'smtp'],
    swagger: false,
    measureBare: true,
  },
  {
    name: 'cjs-app',
    kind: 'CommonJS',
    platform: 'fastify',
    database: 'postgres',
    install: ['core', 'postgres', 'smtp', 'fastify', 'swagger', 'passport'],
    swagger: true,
    passport: true,
  },
];
const t0 = Date.now();
run(
  process.execPath,
  [nestCli, 'new', 'esm-app', '--skip-git', '--skip-install', '--package-manager', 'npm', '--no-observe'],
  {
    cwd: work,
  },
);
run(
  schematicsCli,
  ['@nestjs/schematics:application', '--name=cjs-app', '--type=cjs', '--strict', '--no-debug', '--no-dry-run'],
  {
    cwd: work,
  },
);
/** A plain Node project (`npm init -y`) with the client installed by its README's command. */
const clientDir = path.join(work, 'client-node');
async function prepareClient() {
  fs.mkdirSync(clientDir);
  run('npm', ['init', '-y'], { cwd: clientDir });
  const t = Date.now();
  for (const line of clientInstall) {
    const [command, ...args] = withTarballs(` ${line}`).trim().split(/\s+/);
    await runInstall(command, args, { cwd: clientDir });
  }
  fs.writeFileSync(path.join(clientDir, 'sign-in.mjs'), clientScript);
  const installed = JSON.parse(
    fs.readFileSync(path.join(clientDir, 'node_modules/nestjs-otp-auth-client/package.json'), 'utf8'),
  );
  const dependencies = fs.readdirSync(path.join(clientDir, 'node_modules')).filter((d) => !d.startsWith('.'));
  check(
    dependencies.length === 1,
    `the client should install no dependencies, node_modules has: ${dependencies.join(', ')}`,
  );
  log(
    `client: README install ${((Date.now() - t) / 1000).toFixed(1)} s, ${installed.name}@${installed.version}, no dependencies`,
  );
}

async function prepare(app) {
  app.dir = path.join(work, app.name);
  const manifest = JSON.parse(fs.readFileSync(path.join(app.dir, 'package.json'), 'utf8'));
  const isEsm = manifest.type === 'module';
  if (isEsm !== app.name.startsWith('esm')) throw new Error(`${app.name}: scaffolded as ${isEsm ? 'ESM' : 'CommonJS'}`);
  const { ms: scaffoldInstallMs } = await runInstall('npm', ['install', '--no-audit', '--no-fund'], { cwd: app.dir });
  log(`${app.name}: the generated app's own dependencies installed in ${(scaffoldInstallMs / 1000).toFixed(0)} s`);
  if (app.measureBare) {
    // The generated app as it is: the baseline for the cold start with the module.
    await runAsync('npm', ['run', 'build'], { cwd: app.dir });
    app.bareColdStartMs = await coldStart(app.dir, path.join(app.dir, 'dist/main.js'));
    log(`${app.name}: the bare generated app answers ${app.bareColdStartMs} ms after the process started`);
  }

  // --- 3. the README's commands and files
  const before = duKb(path.join(app.dir, 'node_modules'));
  const t = Date.now();
  app.blockKb = {};
  for (const block of app.install) {
    const sizeBefore = duKb(path.join(app.dir, 'node_modules'));
    for (const command of installBlocks.get(block)) {
      log(`${app.name}$ ${command}`);
      await runInstall('bash', ['-c', withTarballs(command)], { cwd: app.dir });
    }
    app.blockKb[block] = duKb(path.join(app.dir, 'node_modules')) - sizeBefore;
  }
  app.installMs = Date.now() - t;
  for (const [name, { version }] of tarballs) {
    const wanted = JSON.parse(fs.readFileSync(path.join(app.dir, 'package.json'), 'utf8')).dependencies?.[name];
    const installed = path.join(app.dir, 'node_modules', name, 'package.json');
    if (wanted === undefined) continue; // a package this app's README blocks do not install
    if (!wanted.startsWith('file:') || JSON.parse(fs.readFileSync(installed, 'utf8')).version !== version) {
      throw new Error(`${app.name}: ${name} was not installed from its tarball (${wanted})`);
    }
  }
  app.addedKb = duKb(path.join(app.dir, 'node_modules')) - before;
  app.packageKb = duKb(path.join(app.dir, 'node_modules/nestjs-otp-auth'));
  for (const file of files) {
    if (file.variant && file.variant !== app.platform) continue;
    fs.writeFileSync(path.join(app.dir, file.path), file.text);
  }
  if (app.passport) {
    // Not part of the quick start: the Passport entry point's declarations and its loading in this app.
    fs.writeFileSync(
      path.join(app.dir, 'src/passport-entry.ts'),
      "import { OtpJwtStrategy, OTP_JWT_STRATEGY } from 'nestjs-otp-auth/passport';\n\n" +
        'export const passportEntry: [typeof OtpJwtStrategy, string] = [OtpJwtStrategy, OTP_JWT_STRATEGY];\n',
    );
  }
  // Strict, and the library's declarations (and everything they pull in) are checked too.
  const tsconfigPath = path.join(app.dir, 'tsconfig.json');
  const tsconfig = JSON.parse(fs.readFileSync(tsconfigPath, 'utf8'));
  Object.assign(tsconfig.compilerOptions, { skipLibCheck: false, strict: true, strictPropertyInitialization: true });
  fs.writeFileSync(tsconfigPath, JSON.stringify(tsconfig, null, 2));
  const resolvable = (name) => {
    try {
      createRequire(path.join(app.dir, 'package.json')).resolve(`${name}/package.json`);
      return true;
    } catch {
      return false;
    }
  };
  const neverAsked = ['mongoose', 'ioredis', '@nestjs/throttler'];
  const optionalHere = [
    ...(app.swagger ? [] : ['@nestjs/swagger']),
    ...(app.passport ? [] : ['passport', 'passport-jwt', '@nestjs/passport']),
  ];
  for (const absent of [...neverAsked, ...optionalHere]) {
    if (resolvable(absent))
      throw new Error(`${app.name}: ${absent} got installed, but the README's commands never ask for it`);
  }
  const { ms } = await runAsync('npm', ['run', 'build'], { cwd: app.dir });
  log(
    `${app.name}: README install ${(app.installMs / 1000).toFixed(0)} s (+${(app.addedKb / 1024).toFixed(1)} MB in node_modules, ` +
      `nestjs-otp-auth ${(app.packageKb / 1024).toFixed(1)} MB), nest build ${(ms / 1000).toFixed(1)} s`,
  );
  app.main = ['dist/main.js', 'dist/src/main.js'].map((p) => path.join(app.dir, p)).find((p) => fs.existsSync(p));
  if (!app.main) throw new Error(`${app.name}: nest build produced no main.js`);
  if (app.passport) {
    const entry = path.join(path.dirname(app.main), 'passport-entry.js');
    const { out } = await runAsync(
      process.execPath,
      ['-e', `console.log(require(${JSON.stringify(entry)}).passportEntry[1])`],
      {
        cwd: app.dir,
      },
    );
    if (out.trim() !== 'otp-jwt') throw new Error(`${app.name}: nestjs-otp-auth/passport did not load: ${out}`);
  }
}
try {
  await Promise.all([...apps.map(prepare), prepareClient()]);
} catch (error) {
  // One app failed: the other's npm install or build must not go on after the test has ended.
  for (const child of children) child.kill('SIGKILL');
  throw error;
}
log(`both apps scaffolded, installed and built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// --- 4. run them --------------------------------------------------------------------------------------
const mail = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onData(stream, _session, callback) {
    let raw = '';
    stream.on('data', (chunk) => (raw += chunk));
    stream.on('end', () => {
      mail.push(raw);
      callback();
    });
  },
});
await new Promise((resolve) => smtp.listen(0, '127.0.0.1', resolve));
const smtpPort = smtp.server.address().port;

const admin = new pg.Client({ connectionString: POSTGRES_URL });
await admin.connect();
const pgDatabase = `otp_consumer_${Math.floor(Date.now() / 1000)}_${randomBytes(3).toString('hex')}`;
await admin.query(`CREATE DATABASE ${pgDatabase}`);
const pgUrl = Object.assign(new URL(POSTGRES_URL), { pathname: `/${pgDatabase}` }).toString();

/** What the quick start reads from its environment. */
function appEnv(app) {
  return {
    ...cleanEnv(),
    OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    MAIL_FROM: 'Consumer test <no-reply@example.com>',
    ...(app.database === 'postgres' ? { DATABASE_URL: pgUrl } : {}),
  };
}

// A cancelled run (Ctrl-C, CI timeout) must not leave app processes or the database behind.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    for (const child of children) child.kill('SIGKILL');
    await admin.query(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`).catch(() => undefined);
    process.exit(130);
  });
}
function startApp(app, { main = app.main, env = {}, port }) {
  const child = spawn(process.execPath, [main], {
    cwd: app.dir,
    env: { ...appEnv(app), PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('exit', (code) => (children.delete(child), resolve(code))));
  return { child, exited, output: () => output };
}

/** Milliseconds from spawning `node main` until GET / answers 200 (the process is stopped after). */
async function coldStart(cwd, main) {
  const port = await freePort();
  const t = Date.now();
  const child = spawn(process.execPath, [main], { cwd, env: { ...cleanEnv(), PORT: String(port) }, stdio: 'ignore' });
  try {
    for (;;) {
      const status = await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return Date.now() - t;
      if (child.exitCode !== null || Date.now() - t > 60_000) throw new Error(`${main} did not start`);
      await sleep(20);
    }
  } finally {
    child.kill('SIGKILL');
  }
}

async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function codeFor(email, after) {
  for (let i = 0; i < 100; i++) {
    const found = mail.slice(after).find((m) => m.includes(`To: ${email}`) || m.includes(`<${email}>`));
    const code = found?.match(/code for [^\r\n]* is:\r?\n\r?\n(\d{6})/)?.[1];
    if (code) return code;
    await sleep(100);
  }
  throw new Error(`no mail with a code reached ${email}`);
}

const totpCode = (secret, at = Date.now()) =>
  new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: at,
  });

async function exercise(app) {
  const port = await freePort();
  const t = Date.now();
  const proc = startApp(app, { port });
  const base = `http://127.0.0.1:${port}`;
  // Sends a refresh cookie only where a browser would: under its Path.
  const call = async (method, url, { body, token, cookie } = {}) => {
    const sent = cookie && url.startsWith(cookie.path) ? cookie.pair : undefined;
    const response = await fetch(base + url, {
      method,
      headers: {
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(sent ? { cookie: sent } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const setCookie = response.headers.getSetCookie().find((c) => c.includes('otp_refresh='));
    return {
      status: response.status,
      headers: response.headers,
      json,
      text,
      cookie: setCookie && parseCookie(setCookie),
    };
  };
  const step = (name) => log(`${app.name} (${app.platform}, ${app.database}): ${name}`);
  try {
    for (;;) {
      const answer = await call('GET', '/').catch(() => undefined);
      if (answer?.status === 200) break;
      if (proc.child.exitCode !== null) throw new Error(`${app.name} exited at startup`);
      if (Date.now() - t > 60_000) throw new Error(`${app.name} did not answer within 60 s`);
      await sleep(20);
    }
    app.coldStartMs = Date.now() - t;
    step(`answered ${app.coldStartMs} ms after the process started`);
    const email = `${app.name}-${randomBytes(3).toString('hex')}@example.com`;
    check((await call('GET', '/')).json?.hello === 'world', '@Public() route');
    check(
      (await call('GET', '/session')).status === 401,
      'the global guard must refuse an unmarked route without a token',
    );
    check((await call('GET', '/me')).status === 401, 'VerifiedUserGuard must refuse /me without a token');

    let seen = mail.length;
    check((await call('POST', '/auth/request-otp', { body: { email } })).status === 200, 'request-otp');
    const firstCodeAt = Date.now(); // the server's cooldown started before this
    const session = await call('POST', '/auth/verify-otp', { body: { email, code: await codeFor(email, seen) } });
    check(session.status === 200 && session.json.access_token && session.cookie, `verify-otp: ${session.text}`);
    const { attributes } = session.cookie;
    check(
      session.cookie.name === '__Secure-otp_refresh' &&
        attributes.path === '/auth' &&
        'httponly' in attributes &&
        'secure' in attributes &&
        attributes.samesite?.toLowerCase() === 'strict',
      `the refresh cookie's attributes: ${JSON.stringify(session.cookie)}`,
    );
    const session2 = await call('GET', '/session', { token: session.json.access_token });
    check(
      session2.status === 200 && session2.json.user === String(me0(session.json.access_token)),
      `/session: ${session2.text}`,
    );
    const me = await call('GET', '/me', { token: session.json.access_token });
    check(me.status === 200 && me.json.email === email && 'display_name' in me.json.claims, `/me: ${me.text}`);
    step('signed in with the mailed code; GET /me behind VerifiedUserGuard');

    const refreshed = await call('POST', '/auth/refresh', { cookie: session.cookie });
    check(refreshed.status === 200 && refreshed.json.access_token && refreshed.cookie, `refresh: ${refreshed.text}`);
    check(refreshed.cookie.pair !== session.cookie.pair, 'refresh must rotate the refresh token');
    const token = refreshed.json.access_token;
    check((await call('GET', '/me', { token })).status === 200, '/me with the refreshed token');
    step('refreshed (rotated cookie)');

    const setup = await call('POST', '/auth/totp/setup', { token });
    check(setup.status === 200 || setup.status === 201, `totp/setup: ${setup.text}`);
    const confirmed = await call('POST', '/auth/totp/confirm', { token, body: { code: totpCode(setup.json.secret) } });
    check(confirmed.status === 200 && confirmed.json.backup_codes?.length > 0, `totp/confirm: ${confirmed.text}`);
    step('enrolled an authenticator');

    const out = await call('POST', '/auth/logout', { token, cookie: refreshed.cookie });
    check(out.status === 200, `logout: ${out.text}`);
    check((await call('GET', '/me', { token })).status === 401, 'the access token must be refused after logout');
    check((await call('POST', '/auth/refresh', { cookie: refreshed.cookie })).status === 401, 'refresh after logout');
    step('logged out; the access token and the refresh cookie are refused');

    // The resend cooldown (60 s) keeps the second code back; the other app and the startup checks
    // run meanwhile.
    await sleep(Math.max(0, 61_000 - (Date.now() - firstCodeAt)));
    seen = mail.length;
    let again = await call('POST', '/auth/request-otp', { body: { email } });
    if (again.status === 429) {
      // Still inside the cooldown by the server's clock: wait what it says, once.
      await sleep(Number(again.headers.get('retry-after') ?? 5) * 1000 + 500);
      again = await call('POST', '/auth/request-otp', { body: { email } });
    }
    check(again.status === 200, `second request-otp: ${again.status} ${again.text}`);
    const first = await call('POST', '/auth/verify-otp', { body: { email, code: await codeFor(email, seen) } });
    check(first.status === 200 && first.json.mfa_required === true, `the MFA step: ${first.text}`);
    check(!first.json.access_token && !first.cookie, 'no tokens before the second factor');
    // The code used at confirm is spent (replay protection); the next step's is inside the window.
    const second = await call('POST', '/auth/totp/verify', {
      body: { mfa_token: first.json.mfa_token, code: totpCode(setup.json.secret, Date.now() + 30_000) },
    });
    check(second.status === 200 && second.json.access_token && second.cookie, `totp/verify: ${second.text}`);
    const claims = JSON.parse(Buffer.from(second.json.access_token.split('.')[1], 'base64url').toString());
    check(claims.amr.includes('totp'), `amr after two factors: ${claims.amr}`);
    check((await call('GET', '/me', { token: second.json.access_token })).status === 200, '/me after two factors');
    step('signed in again with email code + TOTP');

    if (app.swagger) {
      const { out: doc } = await runAsync(process.execPath, ['-e', openApiProbe(app)], {
        cwd: app.dir,
        env: appEnv(app),
      });
      const document = JSON.parse(doc);
      const schema = document.components?.schemas?.RequestOtpBodyDto;
      check(schema?.properties?.email, `with @nestjs/swagger the bodies are documented: ${doc.slice(0, 500)}`);
      step('the OpenAPI document describes the module bodies (RequestOtpBodyDto)');
    }
  } catch (error) {
    error.message += `\n--- ${app.name} output ---\n${proc.output().slice(-4000)}`;
    throw error;
  } finally {
    proc.child.kill('SIGTERM');
    const kill = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
    await proc.exited;
    clearTimeout(kill);
  }
}

/** A Set-Cookie header as name, `name=value` pair and lower-cased attributes. */
function parseCookie(header) {
  const [pair, ...rest] = header.split(';').map((part) => part.trim());
  const attributes = Object.fromEntries(
    rest.map((part) => {
      const [key, ...value] = part.split('=');
      return [key.toLowerCase(), value.join('=')];
    }),
  );
  return { name: pair.split('=')[0], pair, path: attributes.path || '/', attributes };
}

/** The `sub` claim of an access token. */
function me0(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
}

/** A script, run in the app's folder, that prints the app's OpenAPI document. */
function openApiProbe(app) {
  const load = (specifier) => (app.name.startsWith('esm') ? `await import('${specifier}')` : `require('${specifier}')`);
  return `(async () => {
    const { NestFactory } = ${load('@nestjs/core')};
    const { SwaggerModule, DocumentBuilder } = ${load('@nestjs/swagger')};
    const { AppModule } = ${load(path.join(path.dirname(app.main), 'app.module.js'))};
    const app = await NestFactory.create(AppModule, ${app.platform === 'fastify' ? `new (${load('@nestjs/platform-fastify')}).FastifyAdapter()` : 'undefined'}, { logger: false, abortOnError: false });
    const document = SwaggerModule.createDocument(app, new DocumentBuilder().build());
    process.stdout.write(JSON.stringify(document));
    await app.close();
  })().catch((e) => { console.error(e); process.exit(1); });`;
}

/** Startup must fail, and say why, for a short secret and for a mistyped option. */
async function startupRefusals(app) {
  const port = await freePort();
  const expectRefusal = async (label, options, expected) => {
    const proc = startApp(app, { port, ...options });
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 60_000);
    const code = await proc.exited;
    clearTimeout(timer);
    check(
      code !== 0 && proc.output().includes(expected),
      `${label}: expected exit with "${expected}", got ${code}:\n${proc.output().slice(-3000)}`,
    );
    log(`${app.name}: ${label} stops startup with "${expected}"`);
  };
  await expectRefusal(
    'a short secret',
    { env: { OTP_AUTH_SECRET: 'short' } },
    '`secret` must be at least 32 characters',
  );
  // A key the factory returns that is not an option (a JavaScript app, or options from a config file).
  const typoDist = path.join(app.dir, 'dist-typo');
  fs.cpSync(path.dirname(app.main), typoDist, { recursive: true });
  const modulePath = path.join(typoDist, 'app.module.js');
  const source = fs.readFileSync(modulePath, 'utf8');
  check(source.includes('secret: config.getOrThrow'), 'the compiled quick start has no `secret:` to add a typo beside');
  fs.writeFileSync(
    modulePath,
    source.replace('secret: config.getOrThrow', 'accessTokenTTL: 60, secret: config.getOrThrow'),
  );
  await expectRefusal(
    'a mistyped option',
    { main: path.join(typoDist, path.basename(app.main)) },
    'did you mean `accessTokenTtl`',
  );
}

/** The client README's sign-in.mjs against a running app, answering its prompts from the mail. */
async function clientSignIn(app) {
  const cjs = run(
    process.execPath,
    ['-e', "const c = require('nestjs-otp-auth-client'); console.log(typeof c.OtpAuthClient, typeof c.isOtpAuthError)"],
    { cwd: clientDir },
  ).out.trim();
  check(cjs === 'function function', `require('nestjs-otp-auth-client') gave: ${cjs}`);
  const port = await freePort();
  const server = startApp(app, { port });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (const t = Date.now(); ; await sleep(20)) {
      if (
        (await fetch(`${base}/`).then(
          (r) => r.status,
          () => 0,
        )) === 200
      )
        break;
      if (server.child.exitCode !== null || Date.now() - t > 60_000) throw new Error('the app did not start');
    }
    const email = `client-${randomBytes(3).toString('hex')}@example.com`;
    const mailBefore = mail.length;
    const script = spawn(process.execPath, ['sign-in.mjs', email], {
      cwd: clientDir,
      env: { ...cleanEnv(), AUTH_URL: base },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(script);
    let output = '';
    let answered = false;
    script.stderr.on('data', (d) => (output += d));
    script.stdout.on('data', (d) => {
      output += d;
      if (!answered && output.includes('Code from the email: ')) {
        answered = true;
        codeFor(email, mailBefore).then(
          (code) => script.stdin.write(`${code}\n`),
          () => script.kill('SIGKILL'),
        );
      }
    });
    const timer = setTimeout(() => script.kill('SIGKILL'), 60_000);
    const code = await new Promise((resolve) => script.on('exit', resolve));
    clearTimeout(timer);
    children.delete(script);
    for (const expected of [
      `Signed in as `,
      `GET /me: 200`,
      `"email":"${email}"`,
      'Refreshed: expires',
      'Signed out; GET /me: 401',
    ]) {
      check(
        code === 0 && output.includes(expected),
        `client sign-in.mjs: expected "${expected}", exit ${code}:\n${output}`,
      );
    }
    log(
      `client: the README's sign-in.mjs signed in against ${app.name} with a mailed code, called /me, refreshed and signed out`,
    );
  } catch (error) {
    error.message += `\n--- ${app.name} output ---\n${server.output().slice(-4000)}`;
    throw error;
  } finally {
    server.child.kill('SIGKILL');
  }
}

let failed = false;
try {
  const results = await Promise.allSettled([
    ...apps.map((app) => exercise(app)),
    clientSignIn(apps.find((app) => app.name === 'esm-app')),
    (async () => {
      await sleep(5_000); // while the flows wait for the resend cooldown
      for (const app of apps) await startupRefusals(app);
    })(),
  ]);
  for (const result of results) {
    if (result.status === 'rejected') {
      failed = true;
      console.error(`[consumer] FAILED: ${result.reason?.stack ?? result.reason}`);
    }
  }
} finally {
  for (const child of children) child.kill('SIGKILL');
  smtp.close();
  await admin
    .query(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`)
    .catch((error) => console.error(`[consumer] could not drop ${pgDatabase}: ${error.message}`));
  await admin.end();
  if (!failed && !process.env.CONSUMER_KEEP) fs.rmSync(work, { recursive: true, force: true });
}

const core = tarballs.get('nestjs-otp-auth');
console.log('\n[consumer] summary');
console.log(
  `  nestjs-otp-auth tarball: ${(core.size / 1024).toFixed(0)} kB (${(core.unpacked / 1024).toFixed(0)} kB unpacked)`,
);
for (const app of apps) {
  console.log(
    `  ${app.name} (${app.kind}, ${app.platform}, ${app.database}): README install added ${(app.addedKb / 1024).toFixed(1)} MB to node_modules ` +
      `(nestjs-otp-auth itself ${(app.packageKb / 1024).toFixed(1)} MB); cold start to first answer ${app.coldStartMs ?? '?'} ms` +
      (app.bareColdStartMs ? ` (the bare generated app: ${app.bareColdStartMs} ms)` : ''),
  );
  console.log(
    `    per README block: ${Object.entries(app.blockKb)
      .map(([block, kb]) => `${block} +${(kb / 1024).toFixed(1)} MB`)
      .join(', ')}`,
  );
}
console.log(`  whole test: ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (failed) process.exit(1);
console.log('[consumer] both apps passed');
