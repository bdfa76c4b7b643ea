import { integer } from '../option-checks.js';

/** Default of `cleanupInterval`, in seconds. */
export const CLEANUP_INTERVAL_DEFAULT = 3600;

/** `cleanupInterval` after validation: seconds, or null when off. */
export function resolveCleanupInterval(value: number | false | undefined): number | null {
  return value === false ? null : integer('cleanupInterval', value, CLEANUP_INTERVAL_DEFAULT, 60, 7 * 24 * 3600);
}

/** What the cleanup scheduler reads of the module's options. */
export interface CleanupConfig {
  /** Seconds between automatic cleanups, or null when they are off. */
  readonly cleanupInterval: number | null;
}

/** DI token of {@link CleanupConfig}. */
export const OTP_CLEANUP_CONFIG = Symbol('OTP_CLEANUP_CONFIG');
