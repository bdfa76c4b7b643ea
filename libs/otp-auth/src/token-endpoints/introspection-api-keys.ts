import { createHash, timingSafeEqual } from 'node:crypto';

/** Shortest API key accepted for the introspection endpoint. */
export const MIN_API_KEY_LENGTH = 32;

/**
 * The API keys allowed to call `POST /introspect`, kept only as SHA-256 digests and compared in
 * constant time, against every key, so neither the time taken nor which key matched leaks.
 */
export class IntrospectionApiKeys {
  private readonly digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  /** True when introspection is switched on (at least one key configured). */
  get enabled(): boolean {
    return this.digests.length > 0;
  }

  matches(presented: string | undefined): boolean {
    if (presented === undefined || this.digests.length === 0) return false;
    const candidate = digest(presented);
    let found = false;
    for (const known of this.digests) found = timingSafeEqual(known, candidate) || found;
    return found;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
