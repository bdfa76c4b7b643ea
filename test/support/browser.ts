import { existsSync } from 'node:fs';

/** Debian's Chromium (`apt-get install chromium`); `CHROMIUM_PATH` overrides it. */
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * Headless, no sandbox (CI runs as root), and none of the background connections this closed
 * network would refuse.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Whether the browser tests can run. Without Chromium they are skipped with a printed reason,
 * unless `OTP_REQUIRE_BROWSER=1` (CI), where a missing browser fails the run.
 *
 * @param suite - Named in the message.
 */
export function browserAvailable(suite: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env['OTP_REQUIRE_BROWSER'] === '1') {
    throw new Error(`${suite}: ${CHROMIUM} is missing and OTP_REQUIRE_BROWSER=1 (apt-get install chromium).`);
  }
  console.warn(`${suite}: SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH).`);
  return false;
}
