/** Whether a value is a plain JSON object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decodes base64url (RFC 4648 §5, padding optional) holding UTF-8 JSON into an object, with
 * `atob` and `TextDecoder` (browsers, Node 16+, Deno, Bun; no `Buffer`).
 *
 * @param segment - The encoded text, e.g. a JWT's payload or an `X-Auth-Claims` header.
 * @returns The object, or `null` when the text is not base64url JSON of an object.
 */
export function decodeBase64UrlJson(segment: string): Record<string, unknown> | null {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(segment)) return null;
  try {
    const base64 = segment.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return isRecord(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * The payload of a JWT, decoded **without verifying** its signature: for reading `exp`, `sub`,
 * `amr` and the like in a client, which has no key and need not trust the token (the server
 * verifies every request). Never use it to make an authorization decision on a server; use
 * {@link OtpAuthServerClient.introspect} or the server module's guards there.
 *
 * @param token - A compact JWS (`header.payload.signature`).
 * @returns The payload's claims, or `null` if the token is not a JWT with a JSON object payload.
 */
export function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined || parts[1] === '') return null;
  return decodeBase64UrlJson(parts[1]);
}
