import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file of the sign-in page, read into memory at startup. */
export interface WebUiAsset {
  readonly body: Buffer;
  /** `Content-Type` of the answer. */
  readonly contentType: string;
}

/**
 * Every file the sign-in page may serve, by URL path (`/`, `/ui/app.js`, `/ui/sdk/index.js`):
 * an allowlist built once, so a request can only ever name one of these (no file system access
 * per request, no traversal). Empty when the page's files are missing (see `problem`).
 */
export interface WebUiAssets {
  readonly files: ReadonlyMap<string, WebUiAsset>;
  /** Why the page is not served (a missing file); undefined when it is. */
  readonly problem: string | undefined;
}

/** Where the page's three kinds of files live. */
export interface WebUiLocations {
  /** `index.html` and `app.css`: the source folder `apps/sample/web` (tsc does not copy them). */
  readonly staticDir: string;
  /** `app.js`, compiled by `tsc -b` from `apps/sample/web/app.ts`: `dist/apps/sample/web`. */
  readonly scriptDir: string;
  /** The SDK's ES module build: `nestjs-otp-auth-client/dist/esm`. */
  readonly sdkDir: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Only plain file names of these kinds are ever served from the SDK's folder (not its `.d.ts` or `package.json`). */
const SDK_FILE = /^[\w-]+\.js(\.map)?$/;

/**
 * The default locations, from where this module runs: `apps/sample/src` (sources, under Jest)
 * or `dist/apps/sample/src` (after `npm run build`, and in the Docker image, which keeps both
 * `dist/` and `apps/sample/web/`). The SDK is found through module resolution, as the workspace
 * link (`node_modules/nestjs-otp-auth-client`) or an installed package provides it.
 */
export function defaultWebUiLocations(): WebUiLocations {
  const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..'); // apps/sample or dist/apps/sample
  const fromBuild = basename(resolve(appDir, '../..')) === 'dist';
  const root = fromBuild ? resolve(appDir, '../../..') : resolve(appDir, '../..');
  const sdkPackage = createRequire(import.meta.url).resolve('nestjs-otp-auth-client/package.json');
  return {
    staticDir: join(root, 'apps', 'sample', 'web'),
    scriptDir: join(root, 'dist', 'apps', 'sample', 'web'),
    sdkDir: join(dirname(sdkPackage), 'dist', 'esm'),
  };
}

function asset(path: string): WebUiAsset {
  const extension = /\.[a-z]+$/.exec(path)?.[0] ?? '';
  return { body: readFileSync(path), contentType: CONTENT_TYPES[extension] ?? 'application/octet-stream' };
}

/**
 * Reads the sign-in page's files into memory.
 *
 * @param locations - Where they are; {@link defaultWebUiLocations} by default.
 * @returns The allowlist; empty, with `problem` set, when a required file is missing (the build
 *   has not run), so the app still starts and the page answers 404.
 */
export function loadWebUiAssets(locations: WebUiLocations = defaultWebUiLocations()): WebUiAssets {
  const required: readonly (readonly [string, string])[] = [
    ['/', join(locations.staticDir, 'index.html')],
    ['/ui/app.css', join(locations.staticDir, 'app.css')],
    ['/ui/app.js', join(locations.scriptDir, 'app.js')],
    ['/ui/sdk/index.js', join(locations.sdkDir, 'index.js')],
  ];
  const missing = required.filter(([, path]) => !existsSync(path)).map(([, path]) => path);
  if (missing.length > 0) {
    return { files: new Map(), problem: `missing ${missing.join(', ')} (run npm run build)` };
  }
  const files = new Map<string, WebUiAsset>(required.map(([url, path]) => [url, asset(path)]));
  const map = join(locations.scriptDir, 'app.js.map');
  if (existsSync(map)) files.set('/ui/app.js.map', asset(map));
  for (const name of readdirSync(locations.sdkDir)) {
    if (SDK_FILE.test(name)) files.set(`/ui/sdk/${name}`, asset(join(locations.sdkDir, name)));
  }
  return { files, problem: undefined };
}
