import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  scrypt,
  timingSafeEqual,
  type ScryptOptions,
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
 * scrypt cost of format `s1` backup-code hashes: N = 2^14, r = 8, p = 1 (16 MiB, about 30 ms on
 * one core). Pinned by the format prefix: other parameters would be a new prefix, so stored
 * hashes never need their parameters stored beside them.
 */
export const BACKUP_CODE_SCRYPT: Readonly<Required<Pick<ScryptOptions, 'N' | 'r' | 'p'>>> = { N: 2 ** 14, r: 8, p: 1 };

/** Prefix of scrypt-based backup-code hashes: `s1.<key id>.<HMAC of the scrypt output>`. */
const SCRYPT_FORMAT = 's1';

/** A stored backup code as {@link BackupCodeHasher.findMatch} needs it. */
export interface StoredBackupCodeHash {
  readonly salt: string;
  readonly hash: string;
}

/** The async (threadpool) scrypt, as a promise. */
function scryptAsync(password: string, salt: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, BACKUP_CODE_SCRYPT, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/**
 * Salted, keyed one-way hashes of backup codes.
 *
 * New codes ({@link hashCodes}) are stored as `s1.<key id>.<HMAC(key, scrypt(code, salt))>`: a
 * slow salted hash (ASVS 5.0 6.5.2: the codes carry about 50 bits, under the 112 that would allow
 * a fast hash), and a keyed one (the key is derived from the module secret, which is not in the
 * database). All codes of a set share one random salt, so checking a code costs one scrypt
 * whatever the set's size; the HMAC comes after the scrypt, so one scrypt also serves every key
 * of `previousSecrets`. The older format `<key id>.<HMAC(key, salt, code)>` ({@link hash}, one
 * salt per code) still verifies, so sets issued before keep working until used or replaced.
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

  /**
   * The hashes of a new set of codes under one salt (format `s1`), in the codes' order. Runs the
   * scrypts on the libuv threadpool, never on the event loop.
   */
  async hashCodes(codes: readonly string[], salt: string): Promise<string[]> {
    // In parallel: a new set is rare (confirm, regenerate) and would otherwise take ~10 scrypts in a row.
    const derived = await Promise.all(codes.map((code) => scryptAsync(normalizeBackupCode(code), salt)));
    return derived.map((d) => `${SCRYPT_FORMAT}.${this.current.id}.${this.scryptMac(this.current.key, d)}`);
  }

  /**
   * The index of the stored hash `code` matches, or -1. One scrypt per distinct salt among the
   * `s1` hashes (one for a set made by {@link hashCodes}), and every candidate is compared, so
   * the time taken does not tell which one matched.
   */
  async findMatch(code: string, candidates: readonly StoredBackupCodeHash[]): Promise<number> {
    const normalized = normalizeBackupCode(code);
    const derived = new Map<string, Buffer>();
    for (const { salt, hash } of candidates) {
      // Sequential on purpose: one request holds at most one threadpool thread.
      if (hash.startsWith(`${SCRYPT_FORMAT}.`) && !derived.has(salt))
        derived.set(salt, await scryptAsync(normalized, salt));
    }
    let match = -1;
    candidates.forEach(({ salt, hash }, index) => {
      const scrypted = derived.get(salt);
      const ok =
        hash.startsWith(`${SCRYPT_FORMAT}.`) && scrypted
          ? this.matchesScrypt(scrypted, hash.slice(SCRYPT_FORMAT.length + 1))
          : this.matches(code, salt, hash);
      if (ok && match === -1) match = index;
    });
    return match;
  }

  /**
   * Format-0 hash (one fast HMAC, one salt per code). The module no longer writes it; it is
   * kept so stored sets of that format, and tools that made them, keep working.
   */
  hash(code: string, salt: string): string {
    return `${this.current.id}.${this.mac(this.current.key, code, salt)}`;
  }

  /** Checks a format-0 hash ({@link hash}). */
  matches(code: string, salt: string, stored: string): boolean {
    const dot = stored.indexOf('.');
    const key = this.all.find((k) => k.id === stored.slice(0, dot));
    const expected = Buffer.from(stored.slice(dot + 1));
    // Without a known key, still spend the time of one comparison.
    const candidate = Buffer.from(this.mac((key ?? this.current).key, code, salt));
    return candidate.length === expected.length && timingSafeEqual(candidate, expected) && key !== undefined;
  }

  /** `stored` without the format prefix: `<key id>.<HMAC>`. */
  private matchesScrypt(scrypted: Buffer, stored: string): boolean {
    const dot = stored.indexOf('.');
    const key = this.all.find((k) => k.id === stored.slice(0, dot));
    const expected = Buffer.from(stored.slice(dot + 1));
    const candidate = Buffer.from(this.scryptMac((key ?? this.current).key, scrypted));
    return candidate.length === expected.length && timingSafeEqual(candidate, expected) && key !== undefined;
  }

  private scryptMac(key: Buffer, scrypted: Buffer): string {
    // The label keeps these MACs apart from format 0's, which use the same key.
    return createHmac('sha256', key).update('backup-code-scrypt-v1\0').update(scrypted).digest('base64url');
  }

  private mac(key: Buffer, code: string, salt: string): string {
    return createHmac('sha256', key)
      .update(`${salt}\0${normalizeBackupCode(code)}`)
      .digest('base64url');
  }
}
