import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

const SALT = 'nestjs-otp-auth/v1';

interface CipherKey {
  readonly id: string;
  readonly key: Buffer;
}

function cipherKey(secret: string): CipherKey {
  const key = Buffer.from(hkdfSync('sha256', secret, SALT, 'totp-secret-encryption', 32));
  // The id names the key without revealing it, so rows record which secret encrypted them.
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
}

/**
 * Encrypts TOTP secrets at rest with AES-256-GCM under a key derived from the module secret.
 * The user id is authenticated data, so a ciphertext copied to another user's row fails to
 * decrypt. Keys derived from `previousSecrets` still decrypt, so the secret can be rotated.
 */
export class TotpCipher {
  private readonly current: CipherKey;
  private readonly all: readonly CipherKey[];

  constructor(secret: string, previousSecrets: readonly string[] = []) {
    this.current = cipherKey(secret);
    this.all = [this.current, ...previousSecrets.map(cipherKey)];
  }

  /** The id of the key new secrets are encrypted with. */
  get keyId(): string {
    return this.current.id;
  }

  encrypt(plaintext: string, userId: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(Buffer.from(userId));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.');
  }

  /** The plaintext, or null when no known key opens it (wrong key, wrong user, tampering). */
  decrypt(ciphertext: string, keyId: string, userId: string): string | null {
    const key = this.all.find((k) => k.id === keyId);
    const parts = ciphertext.split('.');
    if (!key || parts.length !== 3) return null;
    const [iv, body, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    // Only full 16-byte tags: GCM would otherwise accept truncated ones (4 bytes = 32-bit forgery).
    if (iv.length !== 12 || tag.length !== 16) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: 16 });
      decipher.setAAD(Buffer.from(userId));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}

/** Backup codes: 10 characters from an unambiguous alphabet (~50 bits), shown as `XXXXX-XXXXX`. */
const BACKUP_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function newBackupCode(): string {
  const bytes = randomBytes(10);
  let code = '';
  // 256 is a multiple of 32, so `byte % 32` is unbiased.
  for (const byte of bytes) code += BACKUP_ALPHABET[byte % 32];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** Upper-cases and strips separators, so `abcde fghjk` matches `ABCDE-FGHJK`. */
export function normalizeBackupCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '');
}

/**
 * Salted, keyed one-way hashes of backup codes, stored as `<key id>.<HMAC>` so codes made under a
 * secret listed in `previousSecrets` keep working after a rotation.
 */
export class BackupCodeHasher {
  private readonly current: CipherKey;
  private readonly all: readonly CipherKey[];

  constructor(secret: string, previousSecrets: readonly string[] = []) {
    const derive = (s: string): CipherKey => {
      const key = Buffer.from(hkdfSync('sha256', s, SALT, 'backup-code-hash', 32));
      return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
    };
    this.current = derive(secret);
    this.all = [this.current, ...previousSecrets.map(derive)];
  }

  hash(code: string, salt: string): string {
    return `${this.current.id}.${this.mac(this.current.key, code, salt)}`;
  }

  matches(code: string, salt: string, stored: string): boolean {
    const dot = stored.indexOf('.');
    const key = this.all.find((k) => k.id === stored.slice(0, dot));
    const expected = Buffer.from(stored.slice(dot + 1));
    // Without a known key, still spend the time of one comparison.
    const candidate = Buffer.from(this.mac((key ?? this.current).key, code, salt));
    return candidate.length === expected.length && timingSafeEqual(candidate, expected) && key !== undefined;
  }

  private mac(key: Buffer, code: string, salt: string): string {
    return createHmac('sha256', key)
      .update(`${salt}\0${normalizeBackupCode(code)}`)
      .digest('base64url');
  }
}
