import { createHmac } from 'node:crypto';
import { deriveStatelessCode, MAX_STATELESS_CODE_DIGITS, windowCounter } from './stateless-code.js';

const KEY = Buffer.alloc(32, 7);

describe('deriveStatelessCode', () => {
  it('is deterministic for one address, purpose and window, and differs across each of them', () => {
    const code = deriveStatelessCode(KEY, 'login', 'a@example.com', 1000, 6);
    expect(code).toMatch(/^\d{6}$/);
    expect(deriveStatelessCode(KEY, 'login', 'a@example.com', 1000, 6)).toBe(code);
    const others = [
      deriveStatelessCode(KEY, 'login', 'b@example.com', 1000, 6),
      deriveStatelessCode(KEY, 'totp-setup', 'a@example.com', 1000, 6),
      deriveStatelessCode(KEY, 'login', 'a@example.com', 1001, 6),
      deriveStatelessCode(Buffer.alloc(32, 8), 'login', 'a@example.com', 1000, 6),
    ];
    // Four independent 6-digit values all equal to the first: odds 10^-6 each.
    expect(others.filter((other) => other === code).length).toBeLessThan(2);
  });

  it('separates fields, so "login" + "xa@b" is not "loginx" + "a@b"', () => {
    const many = (purpose: string, email: string) =>
      Array.from({ length: 20 }, (_, i) => deriveStatelessCode(KEY, purpose, email, i, 9)).join();
    expect(many('login', 'xa@b.c')).not.toBe(many('loginx', 'a@b.c'));
  });

  it('follows RFC 4226 truncation when the value is below the unbiased limit', () => {
    // Recompute independently: HMAC-SHA256 over purpose\0email\0counter(8 bytes BE), dynamic truncation.
    for (let counter = 0; counter < 200; counter += 1) {
      const message = Buffer.concat([
        Buffer.from('login\0a@example.com\0'),
        Buffer.from(counter.toString(16).padStart(16, '0'), 'hex'),
      ]);
      const mac = createHmac('sha256', KEY).update(message).digest();
      const at = mac[31]! & 0x0f;
      const value = mac.readUInt32BE(at) & 0x7fffffff;
      if (value >= 2147000000) continue; // the rare rejected top range (limit for 6 digits)
      expect(deriveStatelessCode(KEY, 'login', 'a@example.com', counter, 6)).toBe(String(value % 1e6).padStart(6, '0'));
    }
  });

  it('spreads codes evenly over the leading digit', () => {
    const counts = Array.from({ length: 10 }, () => 0);
    const n = 20_000;
    for (let i = 0; i < n; i += 1) counts[Number(deriveStatelessCode(KEY, 'login', `u${i}@x.y`, i, 4)[0])]! += 1;
    // Chi-squared over 10 buckets, 9 degrees of freedom: 27.9 is the 0.1% critical value.
    const expected = n / 10;
    const chi = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    expect(chi).toBeLessThan(27.9);
  });

  it('re-hashes values in the top partial range instead of folding them (9 digits: 7% of values)', () => {
    let rejected = 0;
    for (let counter = 0; counter < 300; counter += 1) {
      const message = Buffer.concat([
        Buffer.from('login\0a@example.com\0'),
        Buffer.from(counter.toString(16).padStart(16, '0'), 'hex'),
      ]);
      const mac = createHmac('sha256', KEY).update(message).digest();
      const value = mac.readUInt32BE(mac[31]! & 0x0f) & 0x7fffffff;
      if (value < 2e9) continue;
      rejected += 1;
      const again = createHmac('sha256', KEY).update(mac).digest();
      const next = again.readUInt32BE(again[31]! & 0x0f) & 0x7fffffff;
      if (next >= 2e9) continue; // rejected twice; rarer still
      expect(deriveStatelessCode(KEY, 'login', 'a@example.com', counter, 9)).toBe(String(next % 1e9).padStart(9, '0'));
    }
    expect(rejected).toBeGreaterThan(5);
  });

  it('mixes in the epoch after the counter: another epoch, other codes; none, the plain derivation', () => {
    const many = (epoch?: string) =>
      Array.from({ length: 20 }, (_, i) => deriveStatelessCode(KEY, 'login', 'a@example.com', i, 9, epoch)).join();
    expect(many('')).toBe(many());
    expect(many('epoch-1')).not.toBe(many());
    expect(many('epoch-1')).not.toBe(many('epoch-2'));
    expect(many('epoch-1')).toBe(many('epoch-1'));
    // The epoch follows the 8-byte counter, so it cannot be confused with the address.
    const mac = createHmac('sha256', KEY)
      .update(Buffer.concat([Buffer.from('login\0a@example.com\0'), Buffer.alloc(8), Buffer.from('e')]))
      .digest();
    const value = mac.readUInt32BE(mac[31]! & 0x0f) & 0x7fffffff;
    if (value < 2147000000)
      expect(deriveStatelessCode(KEY, 'login', 'a@example.com', 0, 6, 'e')).toBe(String(value % 1e6).padStart(6, '0'));
  });

  it(`refuses digit counts outside 4..${MAX_STATELESS_CODE_DIGITS}`, () => {
    expect(() => deriveStatelessCode(KEY, 'login', 'a@b.c', 1, 10)).toThrow(RangeError);
    expect(() => deriveStatelessCode(KEY, 'login', 'a@b.c', 1, 3)).toThrow(RangeError);
    expect(deriveStatelessCode(KEY, 'login', 'a@b.c', 1, 9)).toMatch(/^\d{9}$/);
  });
});

describe('windowCounter', () => {
  it('counts whole windows since the epoch', () => {
    expect(windowCounter(0, 300)).toBe(0);
    expect(windowCounter(299_999, 300)).toBe(0);
    expect(windowCounter(300_000, 300)).toBe(1);
  });
});
