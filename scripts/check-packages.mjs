#!/usr/bin/env node
// Checks each package under libs/ as npm would publish it (run after `npm run build`):
// - every bare import in the packed dist/ files is a declared dependency or peer dependency
//   (inside the workspace the root hoists everything, so an undeclared import passes every
//   in-repo test and fails for users);
// - the main entry point loads no optional peer, and each entry point's static imports are listed;
// - every `exports`/`main`/`types`/`typesVersions` target is in the tarball, and so are README.md
//   and LICENSE; source maps carry their sources.
// Exits 1 with one line per problem.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const problems = [];
const packageName = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
const isBuiltin = (spec) => spec.startsWith('node:') || builtinModules.includes(packageName(spec));

/** Static imports/re-exports, `import()` and `require('…')` (the optional-peer loader) of a built file. */
function importsOf(text) {
  const found = { static: [], lazy: [] };
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm)) found.static.push(m[1]);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) found.static.push(m[1]);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.lazy.push(m[1]);
  for (const m of text.matchAll(/\brequire\)?\(\s*['"]([^'"]+)['"]\s*\)/g)) found.lazy.push(m[1]);
  return found;
}

/** Every export target string of a package.json `exports` value. */
function targets(value) {
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(targets);
  return [];
}

/** `@types/…` name of a package: `@scope/name` becomes `@types/scope__name`. */
const typesPackage = (name) => `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;

/** Whether the installed package carries its own declarations. */
function shipsTypes(name) {
  const dir = path.join(root, 'node_modules', name);
  if (!fs.existsSync(path.join(dir, 'package.json'))) return false;
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const hasTypesCondition = JSON.stringify(manifest.exports ?? {}).includes('"types"');
  return Boolean(
    manifest.types || manifest.typings || hasTypesCondition || fs.existsSync(path.join(dir, 'index.d.ts')),
  );
}

for (const dir of fs.readdirSync(path.join(root, 'libs'))) {
  const pkgDir = path.join(root, 'libs', dir);
  const manifestPath = path.join(pkgDir, 'package.json');
  if (!fs.existsSync(manifestPath)) continue;
  const pkg = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const label = pkg.name;
  const fail = (message) => problems.push(`${label}: ${message}`);
  if (!fs.existsSync(path.join(pkgDir, 'dist'))) {
    fail('dist/ is missing; run `npm run build` first');
    continue;
  }
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: pkgDir, encoding: 'utf8' }),
  );
  const files = new Set(packed.files.map((f) => f.path));
  for (const required of ['README.md', 'LICENSE', 'package.json']) {
    if (!files.has(required)) fail(`the tarball has no ${required}`);
  }
  const declaredTargets = [
    ...targets(pkg.exports),
    pkg.main,
    pkg.types,
    ...Object.values(pkg.typesVersions ?? {}).flatMap((map) => Object.values(map).flat()),
  ].filter(Boolean);
  for (const target of declaredTargets) {
    const file = target.replace(/^\.\//, '');
    if (!files.has(file)) fail(`${target} is referenced by package.json but not in the tarball`);
  }
  for (const file of files) {
    if (/\.tsbuildinfo$|\.spec\./.test(file)) fail(`${file} should not be published`);
    if (file.endsWith('.map')) {
      const map = JSON.parse(fs.readFileSync(path.join(pkgDir, file), 'utf8'));
      const shipped = (map.sources ?? []).every(
        (source, i) => typeof map.sourcesContent?.[i] === 'string' || files.has(path.join(path.dirname(file), source)),
      );
      if (!shipped) fail(`${file} points at sources that are not shipped`);
    }
  }

  const optional = new Set(
    Object.keys(pkg.peerDependenciesMeta ?? {}).filter((k) => pkg.peerDependenciesMeta[k].optional),
  );
  const declared = new Set([
    pkg.name,
    ...['dependencies', 'peerDependencies', 'optionalDependencies'].flatMap((k) => Object.keys(pkg[k] ?? {})),
  ]);
  const parsed = new Map();
  const parse = (file) => {
    if (!parsed.has(file)) parsed.set(file, importsOf(fs.readFileSync(path.join(pkgDir, file), 'utf8')));
    return parsed.get(file);
  };
  for (const file of files) {
    if (!/\.(m|c)?js$/.test(file)) continue;
    const { static: eager, lazy } = parse(file);
    for (const spec of [...eager, ...lazy]) {
      if (spec.startsWith('.') || isBuiltin(spec)) continue;
      if (!declared.has(packageName(spec))) fail(`${file} imports ${spec}, which package.json does not declare`);
    }
  }

  // What each entry point loads when imported (the static import graph from its file), and what
  // its type declarations reference (a strict app with skipLibCheck off must resolve all of it).
  const graph = (start, declarations) => {
    const seen = new Set();
    const packages = new Set();
    const queue = [start.replace(/^\.\//, '')];
    while (queue.length > 0) {
      const file = queue.pop();
      if (seen.has(file) || !files.has(file)) continue;
      seen.add(file);
      const found = parse(file);
      for (const spec of declarations ? [...found.static, ...found.lazy] : found.static) {
        if (spec.startsWith('.')) {
          const next = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
          queue.push(declarations ? next.replace(/\.js$/, '.d.ts') : next);
        } else if (!isBuiltin(spec) && packageName(spec) !== pkg.name) packages.add(packageName(spec));
      }
    }
    return packages;
  };
  const report = [];
  for (const [subpath, value] of Object.entries(pkg.exports ?? {})) {
    const all = targets(value);
    const entry = all.find((t) => /\.(m|c)?js$/.test(t));
    const types = all.find((t) => /\.d\.(m|c)?ts$/.test(t));
    if (!entry) continue;
    const packages = graph(entry, false);
    const typePackages = types ? graph(types, true) : new Set();
    const optionalLoaded = [...packages].filter((p) => optional.has(p));
    const optionalTyped = [...typePackages].filter((p) => optional.has(p) && !packages.has(p));
    if (subpath === '.' && optionalLoaded.length > 0) {
      fail(
        `the main entry point loads optional peer(s) ${optionalLoaded.join(', ')}; move them behind their own entry point`,
      );
    }
    // A strict app (skipLibCheck off) resolves every package these declarations name: each must be
    // declared, with its types in the package or in a declared @types package.
    for (const name of typePackages) {
      if (!declared.has(name) && !name.startsWith('@types/')) {
        fail(`${subpath}'s declarations reference ${name}, which package.json does not declare`);
      } else if (!shipsTypes(name) && !declared.has(typesPackage(name))) {
        fail(
          `${subpath}'s declarations reference ${name}, which has no types of its own: declare ${typesPackage(name)} too`,
        );
      }
    }
    if (subpath === '.' && optionalTyped.length > 0) {
      fail(
        `the main entry point's declarations reference optional peer(s) ${optionalTyped.join(', ')}; apps without them fail to type-check`,
      );
    }
    report.push(`  ${path.posix.join(pkg.name, subpath)}: ${[...packages].sort().join(', ') || '(nothing)'}`);
  }
  console.log(
    `[packages] ${label}@${pkg.version}: ${files.size} files, ${packed.size} bytes packed; entry points load:`,
  );
  console.log(report.join('\n'));
}

if (problems.length > 0) {
  console.error(problems.map((p) => `[packages] ${p}`).join('\n'));
  process.exit(1);
}
console.log('[packages] every import is declared and every export target is shipped');
