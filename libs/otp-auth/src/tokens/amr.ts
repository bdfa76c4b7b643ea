/** Authentication-method values (RFC 8176 style) that count as a second factor. */
export const SECOND_FACTOR_AMR: ReadonlySet<string> = new Set(['totp', 'backup']);

/** True when the methods of a session include a second factor. */
export function hasSecondFactor(amr: readonly string[] | undefined): boolean {
  return amr?.some((m) => SECOND_FACTOR_AMR.has(m)) ?? false;
}
