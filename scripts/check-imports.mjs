#!/usr/bin/env node
/**
 * Import structure of the packages, part of `npm run lint`:
 *  - no import cycle between files, type imports included (dpdm reads the TypeScript sources);
 *  - no cycle between the folders of a package's `src/` (each root file counts as its own node),
 *    so every capability folder sits above the ones it uses and a change flows one way.
 * On failure it prints the cycle and the imports that close it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const packages = ['libs/otp-auth/src', 'libs/otp-auth-client/src'];

/** dpdm's dependency tree of one package's sources: file -> imported files (package-relative). */
function dependencyTree(sources) {
  const dir = mkdtempSync(join(tmpdir(), 'check-imports-'));
  try {
    const output = join(dir, 'deps.json');
    const dpdm = join(root, 'node_modules', 'dpdm', 'lib', 'bin', 'dpdm.js');
    execFileSync(
      process.execPath,
      [dpdm, '--no-warning', '--no-tree', '--no-circular', '--no-progress', '-o', output, `${sources}/**/*.ts`],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] }, // its progress lines go to stderr
    );
    const { tree, circulars } = JSON.parse(readFileSync(output, 'utf8'));
    return { tree, circulars };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

let failed = false;
for (const sources of packages) {
  const { tree, circulars } = dependencyTree(sources);
  for (const cycle of circulars) {
    failed = true;
    console.error(`[imports] file cycle in ${sources}: ${cycle.join(' -> ')} -> ${cycle[0]}`);
  }
  const node = (file) => {
    const path = relative(sources, file);
    return path.includes('/') ? path.slice(0, path.indexOf('/')) : path;
  };
  const graph = new Map();
  const edges = new Map();
  for (const [file, dependencies] of Object.entries(tree)) {
    if (!file.startsWith(`${sources}/`) || file.endsWith('.spec.ts')) continue;
    for (const dependency of dependencies ?? []) {
      const target = dependency.id;
      if (!target?.startsWith(`${sources}/`)) continue;
      const [from, to] = [node(file), node(target)];
      if (from === to) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from).add(to);
      const key = `${from} -> ${to}`;
      if (!edges.has(key)) edges.set(key, []);
      edges.get(key).push(`${relative(sources, file)} imports ${relative(sources, target)}`);
    }
  }
  for (const component of cycles(graph)) {
    failed = true;
    console.error(`[imports] folder cycle in ${sources}: ${component.join(', ')}`);
    for (const from of component) {
      for (const to of component) {
        for (const edge of edges.get(`${from} -> ${to}`) ?? []) console.error(`  ${edge}`);
      }
    }
  }
  const files = Object.keys(tree).filter((file) => file.startsWith(`${sources}/`)).length;
  if (!failed) console.log(`[imports] ${sources}: ${files} files, no file or folder cycle`);
}
process.exit(failed ? 1 : 0);
