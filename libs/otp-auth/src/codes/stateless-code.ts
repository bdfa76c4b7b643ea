import { createHmac } from 'node:crypto';

/** Most digits a stateless code can have: RFC 4226 truncation yields 31 bits (2^31 ≈ 2.1 × 10^9). */
export const MAX_STATELESS_CODE_DIGITS = 9;

/** The time window a moment falls in: `floor(now / windowMs)`. */
export function windowCounter(nowMs: number, windowSeconds: number): number {
  return Math.floor(nowMs / (windowSeconds * 1000));
}

/**
 * The code for an address in one time window, derived rather than stored:
 * `HMAC-SHA256(key, purpose ‖ 0 ‖ email ‖ 0 ‖ counter ‖ epoch)` cut to digits by RFC 4226 dynamic
 * truncation. Where the stateless design takes `value mod 10^digits` (which favours low
 * residues), a value in the top partial range is rejected and the MAC re-hashed, so every code
 * is equally likely; the result stays deterministic.
 *
 * @param key - A key used for nothing else (the module derives it from its secret with HKDF).
 * @param counter - {@link windowCounter} of the issue time.
 * @param epoch - The address's random epoch, kept with the markers (see `StatelessLoginCodes`):
 *   when they are lost, a new epoch means codes already used are never issued again. Appended
 *   after the fixed-length counter, so the fields stay unambiguous. Omitted: the plain design.
 */
export function deriveStatelessCode(
  key: Buffer,
  purpose: string,
  email: string,
  counter: number,
  digits: number,
  epoch = '',
): string {
  if (!Number.isInteger(digits) || digits < 4 || digits > MAX_STATELESS_CODE_DIGITS) {
    throw new RangeError(`stateless codes have 4 to ${MAX_STATELESS_CODE_DIGITS} digits (got ${digits})`);
  }
  const modulus = 10 ** digits;
  const limit = Math.floor(0x80000000 / modulus) * modulus;
  const message = Buffer.alloc(Buffer.byteLength(purpose) + Buffer.byteLength(email) + 10 + Buffer.byteLength(epoch));
  let offset = message.write(purpose);
  offset = message.writeUInt8(0, offset);
  offset += message.write(email, offset);
  offset = message.writeUInt8(0, offset);
  offset = message.writeBigUInt64BE(BigInt(counter), offset);
  message.write(epoch, offset);
  let mac = createHmac('sha256', key).update(message).digest();
  for (;;) {
    const at = mac[mac.length - 1]! & 0x0f;
    const value = mac.readUInt32BE(at) & 0x7fffffff;
    if (value < limit) return String(value % modulus).padStart(digits, '0');
    mac = createHmac('sha256', key).update(mac).digest();
  }
}
