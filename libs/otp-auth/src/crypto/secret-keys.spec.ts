import { hashesEqual, newRefreshToken, SecretKeys } from './secret-keys.js';

const SECRET_A = 'a'.repeat(32);
const SECRET_B = 'b'.repeat(32);

describe('SecretKeys', () => {
  const keys = new SecretKeys(SECRET_A);

  it('hashes deterministically per secret', () => {
    const again = new SecretKeys(SECRET_A);
    expect(keys.hashCode('login', 'a@x', '123456')).toBe(again.hashCode('login', 'a@x', '123456'));
    expect(keys.hashRefreshToken('token')).toBe(again.hashRefreshToken('token'));
    expect(keys.successorOf('token')).toBe(again.successorOf('token'));
  });

  it('hashes differently under another secret', () => {
    const other = new SecretKeys(SECRET_B);
    expect(keys.hashCode('login', 'a@x', '123456')).not.toBe(other.hashCode('login', 'a@x', '123456'));
    expect(keys.hashRefreshToken('token')).not.toBe(other.hashRefreshToken('token'));
    expect(keys.successorOf('token')).not.toBe(other.successorOf('token'));
    expect(keys.accessToken.export().equals(other.accessToken.export())).toBe(false);
  });

  it('binds code hashes to purpose, address and code', () => {
    const base = keys.hashCode('login', 'a@x', '123456');
    expect(keys.hashCode('login', 'b@x', '123456')).not.toBe(base);
    expect(keys.hashCode('2fa', 'a@x', '123456')).not.toBe(base);
    expect(keys.hashCode('login', 'a@x', '123457')).not.toBe(base);
  });

  it('keeps the refresh-token hash domain apart from the code hash domain', () => {
    expect(keys.hashRefreshToken('login\x00a@x\x00123456')).not.toBe(keys.hashCode('login', 'a@x', '123456'));
    expect(keys.hashRefreshToken('token')).not.toBe(keys.successorOf('token'));
  });

  it('gives a deterministic successor that is neither the token nor its hash', () => {
    const token = newRefreshToken();
    const successor = keys.successorOf(token);
    expect(keys.successorOf(token)).toBe(successor);
    expect(successor).not.toBe(token);
    expect(successor).not.toBe(keys.hashRefreshToken(token));
    expect(keys.successorOf(successor)).not.toBe(successor);
    // A successor looks like any other refresh token: 256 bits, base64url.
    expect(successor).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('never puts plaintext into a hash', () => {
    const email = 'someone@example.com';
    const code = '987654';
    const hash = keys.hashCode('login', email, code);
    expect(hash).not.toContain(code);
    expect(hash).not.toContain('someone');
    expect(hash).not.toContain('login');
    expect(hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const token = newRefreshToken();
    expect(keys.hashRefreshToken(token)).not.toContain(token.slice(0, 8));
  });

  it('exposes the access-token key as a 32-byte secret KeyObject', () => {
    expect(keys.accessToken.type).toBe('secret');
    expect(keys.accessToken.symmetricKeySize).toBe(32);
    // Not the raw secret itself.
    expect(keys.accessToken.export().toString()).not.toBe(SECRET_A);
  });
});

describe('hashesEqual', () => {
  const keys = new SecretKeys(SECRET_A);

  it('is true for equal hashes and false for different ones', () => {
    const hash = keys.hashRefreshToken('x');
    expect(hashesEqual(hash, keys.hashRefreshToken('x'))).toBe(true);
    expect(hashesEqual(hash, keys.hashRefreshToken('y'))).toBe(false);
  });

  it('is false for inputs of different lengths', () => {
    expect(hashesEqual('abc', 'abcd')).toBe(false);
    expect(hashesEqual('', 'a')).toBe(false);
    expect(hashesEqual(keys.hashRefreshToken('x'), keys.hashRefreshToken('x').slice(1))).toBe(false);
  });
});

describe('newRefreshToken', () => {
  it('is 43 base64url characters (256 bits)', () => {
    const token = newRefreshToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
  });

  it('is unique over 1000 draws', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newRefreshToken()));
    expect(tokens.size).toBe(1000);
  });
});
