/**
 * Trims and lower-cases an address, as every entry point does before using it: the routes' DTOs,
 * the rate-limit guard (so "A@x.com " and "a@x.com" share a counter) and the service.
 */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
