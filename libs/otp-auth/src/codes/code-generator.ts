import { randomInt } from 'node:crypto';

/**
 * A numeric code of `length` digits from the CSPRNG. `crypto.randomInt` draws by rejection
 * sampling, so every code in [0, 10^length) is equally likely (no modulo bias).
 */
export function generateNumericCode(length: number): string {
  return randomInt(0, 10 ** length)
    .toString()
    .padStart(length, '0');
}

/** The developer-mode code: all zeros, of the configured length. */
export function developerCode(length: number): string {
  return '0'.repeat(length);
}
