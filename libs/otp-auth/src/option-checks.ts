import { OtpAuthConfigurationError } from './errors.js';

/**
 * Helpers every feature's option resolver shares: bounds, required strings, and the check of
 * unknown keys (with a "did you mean" for typos). Messages name the option by its path in
 * `OtpAuthModuleOptions`, so the sample app can map them to environment variables.
 */

/** The longest duration most options take, in seconds. */
export const YEAR = 366 * 24 * 3600;

/**
 * The keys an options object takes: `true` for a value, a nested table for an object whose keys are
 * checked too. Other keys are refused at startup, so a typo (`accessTokenTTL`) fails instead of
 * silently leaving the default in place. The `satisfies` clauses make the compiler demand an entry
 * for every option the interfaces declare.
 */
export interface KnownOptionKeys {
  readonly [key: string]: true | KnownOptionKeys;
}

/** Optimal-string-alignment distance: edits, with a swap of neighbours (`widnow`) counting as one. */
function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d: number[] = [];
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) {
        d[i * width + j] = i + j;
        continue;
      }
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * width + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The known key an unknown one was probably meant to be: same letters in another case, else a near spelling. */
export function closestKey(key: string, candidates: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const caseVariant = candidates.find((candidate) => candidate.toLowerCase() === lower);
  if (caseVariant !== undefined) return caseVariant;
  // Short keys get less slack, so `max` does not suggest an unrelated three-letter key.
  let bestDistance = lower.length <= 4 ? 1 : lower.length <= 8 ? 2 : 3;
  let best: string | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= bestDistance && (best === undefined || distance < bestDistance)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** The error for an unknown key, suggesting the nearest known one. */
export function unknownOption(path: string, key: string, candidates: readonly string[]): OtpAuthConfigurationError {
  const name = path === '' ? key : `${path}.${key}`;
  const match = closestKey(key, candidates);
  if (match !== undefined) {
    const suggested = path === '' ? match : `${path}.${match}`;
    return new OtpAuthConfigurationError(`unknown option \`${name}\`; did you mean \`${suggested}\`?`);
  }
  return new OtpAuthConfigurationError(
    path === ''
      ? `unknown option \`${name}\` (the options are listed under "Configuration reference" in the README).`
      : `unknown option \`${name}\`; \`${path}\` takes ${candidates.map((c) => `\`${c}\``).join(', ')}.`,
  );
}

/**
 * Keys of an options object that must be known: its own enumerable keys, and, when it is a class
 * instance (or has another prototype), the prototype members whose names are close to an option
 * (a getter `accesTokenTtl`, a method `onEvnt`): those are typos, while helper methods of an options
 * class with other names are left alone.
 */
export function keysToCheck(value: object, candidates: readonly string[]): string[] {
  const keys = Object.keys(value);
  for (let proto: unknown = Object.getPrototypeOf(value); proto !== null && proto !== Object.prototype;) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || candidates.includes(name) || keys.includes(name)) continue;
      if (closestKey(name, candidates) !== undefined) keys.push(name);
    }
    proto = Object.getPrototypeOf(proto);
  }
  return keys;
}

/** Refuses keys a nested options object does not take, and values that are not objects at all. */
export function checkNestedKeys(value: unknown, table: KnownOptionKeys, path: string): void {
  if (value === undefined || value === false) return; // defaults, or a rule switched off
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OtpAuthConfigurationError(
      `\`${path}\` must be an object with ${Object.keys(table)
        .map((c) => `\`${c}\``)
        .join(', ')} (got ${Array.isArray(value) ? 'an array' : String(value)}).`,
    );
  }
  for (const key of keysToCheck(value, Object.keys(table))) {
    const known = Object.hasOwn(table, key) ? table[key] : undefined;
    if (known === undefined) throw unknownOption(path, key, Object.keys(table));
    if (known !== true) checkNestedKeys((value as Record<string, unknown>)[key], known, `${path}.${key}`);
  }
}

/** An integer option within bounds (`fallback` when unset). */
export function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OtpAuthConfigurationError(`\`${name}\` must be an integer from ${min} to ${max} (got ${String(v)}).`);
  }
  return v;
}

/** A non-empty string option (`fallback` when unset). */
export function nonEmpty(name: string, value: string | undefined, fallback: string): string {
  const v = value ?? fallback;
  if (typeof v !== 'string' || v.trim() === '') {
    throw new OtpAuthConfigurationError(`\`${name}\` must be a non-empty string.`);
  }
  return v;
}
