/**
 * Trims, lower-cases and NFC-normalises an address, as every entry point does before using it: the
 * routes' DTOs, the rate-limit guard (so "A@x.com " and "a@x.com" share a counter) and the service.
 * NFC (composed form) because `kévin@` can be typed as one code point (U+00E9) or as `e` and a
 * combining accent (U+0301): the same address to a reader, two different strings, and so two
 * users, two code rows and two sets of per-address counters unless they are made one.
 */
export function normalizeEmail(email: string): string {
  // NFC last: lower-casing a composed letter can leave a sequence that composes differently.
  return email.trim().toLowerCase().normalize('NFC');
}
