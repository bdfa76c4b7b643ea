import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

const SALT = 'nestjs-otp-auth/v1';

function derive(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, SALT, purpose, 32));
}

/**
 * Independent keys derived from the module secret with HKDF, one per use, so a key that
 * signs tokens never hashes codes and vice versa.
 */
export class SecretKeys {
  /** HS256 signing key as a KeyObject: jsonwebtoken does not re-parse it per request. */
  readonly accessToken: KeyObject;
  /** A separate key for `mfa_token`s, so one can never pass for an access token or vice versa. */
  readonly mfaToken: KeyObject;
  private readonly codeHash: Buffer;
  private readonly refreshHash: Buffer;
  private readonly refreshRotation: Buffer;
  private readonly identityKey: Buffer;
  /** Key of stateless login codes (`codeMode: 'stateless'`). */
  readonly statelessCode: Buffer;

  constructor(secret: string) {
    this.accessToken = createSecretKey(derive(secret, 'access-token'));
    this.mfaToken = createSecretKey(derive(secret, 'mfa-token'));
    this.codeHash = derive(secret, 'code-hash');
    this.refreshHash = derive(secret, 'refresh-hash');
    this.refreshRotation = derive(secret, 'refresh-rotation');
    this.identityKey = derive(secret, 'identity-key');
    this.statelessCode = derive(secret, 'stateless-code');
  }

  /**
   * A short keyed digest of an address for counter keys in shared storage (Redis), so whoever
   * reads that storage cannot list or test addresses without the secret.
   */
  identityKeyOf(value: string): string {
    return createHmac('sha256', this.identityKey).update(value).digest('base64url').slice(0, 22);
  }

  /** Keyed hash of a login code, bound to its purpose and address. */
  hashCode(purpose: string, email: string, code: string): string {
    return createHmac('sha256', this.codeHash).update(`${purpose}\0${email}\0${code}`).digest('base64url');
  }

  /** Keyed hash under which a refresh token is stored. */
  hashRefreshToken(token: string): string {
    return createHmac('sha256', this.refreshHash).update(token).digest('base64url');
  }

  /**
   * The one successor of a refresh token. Deterministic, so a repeated refresh inside the
   * grace period gets the same successor without the store ever holding a plaintext token.
   */
  successorOf(token: string): string {
    return createHmac('sha256', this.refreshRotation).update(token).digest('base64url');
  }
}

/** 256 random bits, base64url: the opaque refresh token of a new session. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison of two base64url hashes. */
export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  // Lengths of our hashes are fixed; a mismatch still compares against itself to spend the time.
  if (left.length !== right.length) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}
