import { createHash, createHmac, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { BACKUP_CODE_SCRYPT, BackupCodeHasher, newBackupCode, normalizeBackupCode, TotpCipher } from './totp-cipher.js';

const SECRET_A = 'a'.repeat(32);
const SECRET_B = 'b'.repeat(32);
const PLAINTEXT = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const USER = 'user-1';

/** Flips one bit of the n-th dot-separated part (0 = IV, 1 = body, 2 = tag), at the byte level. */
function tamper(ciphertext: string, part: number, byte = 0): string {
  const parts = ciphertext.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[byte] = bytes[byte]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('TotpCipher', () => {
  const cipher = new TotpCipher(SECRET_A);

  it('refuses truncated authentication tags (no 32-bit forgeries)', () => {
    const [iv, body, tag] = cipher.encrypt(PLAINTEXT, USER).split('.') as [string, string, string];
    for (const length of [4, 8, 12, 15]) {
      const short = Buffer.from(tag, 'base64url').subarray(0, length).toString('base64url');
      expect(cipher.decrypt(`${iv}.${body}.${short}`, cipher.keyId, USER)).toBeNull();
    }
  });

  it('round-trips', () => {
    const ciphertext = cipher.encrypt(PLAINTEXT, USER);
    expect(cipher.decrypt(ciphertext, cipher.keyId, USER)).toBe(PLAINTEXT);
    expect(cipher.decrypt(cipher.encrypt('', USER), cipher.keyId, USER)).toBe('');
    expect(cipher.decrypt(cipher.encrypt('ünïcødé ✓', USER), cipher.keyId, USER)).toBe('ünïcødé ✓');
  });

  it('decrypts with another instance built from the same secret', () => {
    const other = new TotpCipher(SECRET_A);
    expect(other.keyId).toBe(cipher.keyId);
    expect(other.decrypt(cipher.encrypt(PLAINTEXT, USER), cipher.keyId, USER)).toBe(PLAINTEXT);
  });

  it('produces a different ciphertext each time (random IV) without the plaintext in it', () => {
    const ciphertexts = Array.from({ length: 20 }, () => cipher.encrypt(PLAINTEXT, USER));
    expect(new Set(ciphertexts).size).toBe(ciphertexts.length);
    expect(new Set(ciphertexts.map((c) => c.split('.')[0])).size).toBe(ciphertexts.length);
    for (const ciphertext of ciphertexts) {
      expect(ciphertext.split('.')).toHaveLength(3);
      expect(ciphertext).not.toContain(PLAINTEXT);
      expect(ciphertext).not.toContain(Buffer.from(PLAINTEXT).toString('base64url'));
      for (const part of ciphertext.split('.')) {
        expect(Buffer.from(part, 'base64url').toString('latin1')).not.toContain(PLAINTEXT);
      }
      expect(Buffer.from(ciphertext.split('.')[0]!, 'base64url')).toHaveLength(12);
      expect(Buffer.from(ciphertext.split('.')[2]!, 'base64url')).toHaveLength(16);
    }
  });

  it('binds the ciphertext to the user id (AAD)', () => {
    const ciphertext = cipher.encrypt(PLAINTEXT, USER);
    expect(cipher.decrypt(ciphertext, cipher.keyId, 'user-2')).toBeNull();
    expect(cipher.decrypt(ciphertext, cipher.keyId, '')).toBeNull();
    expect(cipher.decrypt(ciphertext, cipher.keyId, `${USER} `)).toBeNull();
  });

  it('refuses a tampered IV, body or tag', () => {
    const ciphertext = cipher.encrypt(PLAINTEXT, USER);
    expect(cipher.decrypt(tamper(ciphertext, 0), cipher.keyId, USER)).toBeNull();
    expect(cipher.decrypt(tamper(ciphertext, 1), cipher.keyId, USER)).toBeNull();
    expect(cipher.decrypt(tamper(ciphertext, 1, 5), cipher.keyId, USER)).toBeNull();
    expect(cipher.decrypt(tamper(ciphertext, 2), cipher.keyId, USER)).toBeNull();
    expect(cipher.decrypt(tamper(ciphertext, 2, 15), cipher.keyId, USER)).toBeNull();
    // Parts swapped or dropped.
    const [iv, body, tag] = ciphertext.split('.');
    expect(cipher.decrypt(`${iv}.${tag}.${body}`, cipher.keyId, USER)).toBeNull();
    expect(cipher.decrypt(`${iv}.${body}.`, cipher.keyId, USER)).toBeNull();
    expect(cipher.decrypt(`${iv}..${tag}`, cipher.keyId, USER)).toBeNull();
  });

  it('refuses an unknown key id', () => {
    const ciphertext = cipher.encrypt(PLAINTEXT, USER);
    expect(cipher.decrypt(ciphertext, '0000000000000000', USER)).toBeNull();
    expect(cipher.decrypt(ciphertext, '', USER)).toBeNull();
    expect(cipher.decrypt(ciphertext, new TotpCipher(SECRET_B).keyId, USER)).toBeNull();
  });

  it('refuses malformed strings', () => {
    for (const malformed of ['', '.', '..', '...', 'abc', 'a.b', 'a.b.c', 'a.b.c.d', '!!!.@@@.###']) {
      expect(cipher.decrypt(malformed, cipher.keyId, USER)).toBeNull();
    }
    const ciphertext = cipher.encrypt(PLAINTEXT, USER);
    expect(cipher.decrypt(`${ciphertext}.x`, cipher.keyId, USER)).toBeNull();
  });

  describe('rotation', () => {
    it('decrypts under a previous secret by the stored key id, and encrypts under the new one', () => {
      const old = new TotpCipher(SECRET_A);
      const stored = { ciphertext: old.encrypt(PLAINTEXT, USER), keyId: old.keyId };
      const rotated = new TotpCipher(SECRET_B, [SECRET_A]);
      expect(rotated.keyId).not.toBe(old.keyId);
      expect(rotated.keyId).toBe(new TotpCipher(SECRET_B).keyId);
      expect(rotated.decrypt(stored.ciphertext, stored.keyId, USER)).toBe(PLAINTEXT);
      // The stored key id selects the key: the old ciphertext under the new id fails.
      expect(rotated.decrypt(stored.ciphertext, rotated.keyId, USER)).toBeNull();
      // New ciphertexts use the new key, which the old cipher does not know.
      const fresh = rotated.encrypt(PLAINTEXT, USER);
      expect(rotated.decrypt(fresh, rotated.keyId, USER)).toBe(PLAINTEXT);
      expect(old.decrypt(fresh, rotated.keyId, USER)).toBeNull();
      expect(old.decrypt(fresh, old.keyId, USER)).toBeNull();
    });

    it('cannot decrypt under a secret that is not among previousSecrets', () => {
      const old = new TotpCipher(SECRET_A);
      const ciphertext = old.encrypt(PLAINTEXT, USER);
      const withoutPrevious = new TotpCipher(SECRET_B);
      expect(withoutPrevious.decrypt(ciphertext, old.keyId, USER)).toBeNull();
      expect(withoutPrevious.decrypt(ciphertext, withoutPrevious.keyId, USER)).toBeNull();
      const otherPrevious = new TotpCipher(SECRET_B, ['c'.repeat(32)]);
      expect(otherPrevious.decrypt(ciphertext, old.keyId, USER)).toBeNull();
    });

    it('names keys with a 16-hex-digit id', () => {
      expect(cipher.keyId).toMatch(/^[0-9a-f]{16}$/);
    });
  });
});

describe('newBackupCode', () => {
  it('has the XXXXX-XXXXX format from the unambiguous alphabet', () => {
    for (let i = 0; i < 200; i++) {
      expect(newBackupCode()).toMatch(/^[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}$/);
    }
  });

  it('draws 1000 unique codes', () => {
    const codes = Array.from({ length: 1000 }, () => newBackupCode());
    expect(new Set(codes).size).toBe(1000);
    for (const code of codes) expect(code).toMatch(/^[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}$/);
  });
});

describe('normalizeBackupCode', () => {
  it('strips spaces and dashes and upper-cases', () => {
    expect(normalizeBackupCode('ABCDE-FGHJK')).toBe('ABCDEFGHJK');
    expect(normalizeBackupCode('abcde-fghjk')).toBe('ABCDEFGHJK');
    expect(normalizeBackupCode('abcde fghjk')).toBe('ABCDEFGHJK');
    expect(normalizeBackupCode(' a-b c-d e\tfghjk ')).toBe('ABCDEFGHJK');
    expect(normalizeBackupCode('ABCDEFGHJK')).toBe('ABCDEFGHJK');
  });
});

describe('BackupCodeHasher', () => {
  const hasher = new BackupCodeHasher(SECRET_A);
  const code = 'ABCDE-FGHJK';
  const salt = 'salt-1';

  it('hashes the same code and salt to the same value', () => {
    expect(hasher.hash(code, salt)).toBe(hasher.hash(code, salt));
    expect(new BackupCodeHasher(SECRET_A).hash(code, salt)).toBe(hasher.hash(code, salt));
  });

  it('hashes differently under another salt or another secret', () => {
    expect(hasher.hash(code, 'salt-2')).not.toBe(hasher.hash(code, salt));
    expect(new BackupCodeHasher(SECRET_B).hash(code, salt)).not.toBe(hasher.hash(code, salt));
  });

  it('matches normalized variants of the code', () => {
    const hash = hasher.hash(code, salt);
    expect(hasher.matches(code, salt, hash)).toBe(true);
    expect(hasher.matches('abcde-fghjk', salt, hash)).toBe(true);
    expect(hasher.matches('ABCDE FGHJK', salt, hash)).toBe(true);
    expect(hasher.matches('abcde fghjk', salt, hash)).toBe(true);
    expect(hasher.matches('ABCDEFGHJK', salt, hash)).toBe(true);
  });

  it('rejects other codes, another salt, and malformed hashes', () => {
    const hash = hasher.hash(code, salt);
    expect(hasher.matches('ABCDE-FGHJL', salt, hash)).toBe(false);
    expect(hasher.matches('ABCDE-FGHJ', salt, hash)).toBe(false);
    expect(hasher.matches('BCDEF-GHJKA', salt, hash)).toBe(false);
    expect(hasher.matches('', salt, hash)).toBe(false);
    expect(hasher.matches(code, 'salt-2', hash)).toBe(false);
    expect(new BackupCodeHasher(SECRET_B).matches(code, salt, hash)).toBe(false);
    expect(hasher.matches(code, salt, '')).toBe(false);
    expect(hasher.matches(code, salt, hash.slice(1))).toBe(false);
  });

  it('keeps matching hashes made under a previous secret, and only while it is listed', () => {
    const old = new BackupCodeHasher(SECRET_B).hash(code, salt);
    expect(new BackupCodeHasher(SECRET_A, [SECRET_B]).matches(code, salt, old)).toBe(true);
    expect(new BackupCodeHasher(SECRET_A).matches(code, salt, old)).toBe(false);
    expect(new BackupCodeHasher(SECRET_A, [SECRET_B]).hash(code, salt)).toBe(hasher.hash(code, salt));
  });

  it('does not contain the code in the hash', () => {
    const hash = hasher.hash(code, salt);
    expect(hash).toMatch(/^[0-9a-f]{8}\.[A-Za-z0-9_-]{43}$/);
    expect(hash).not.toContain(code);
    expect(hash).not.toContain(normalizeBackupCode(code));
    expect(hash.toUpperCase()).not.toContain(normalizeBackupCode(code));
    expect(hash).not.toContain(salt);
  });
});

describe('BackupCodeHasher, scrypt format (s1)', () => {
  const hasher = new BackupCodeHasher(SECRET_A);
  const codes = ['ABCDE-FGHJK', 'LMNPQ-RSTUV', 'WXYZ2-34567'];
  const salt = randomBytes(16).toString('base64url');

  /** The format computed independently: HMAC(HKDF key, label ‖ scrypt(code, salt; 2^14, 8, 1)). */
  function expectedHash(secret: string, code: string, s: string): string {
    const key = Buffer.from(hkdfSync('sha256', secret, 'nestjs-otp-auth/v1', 'backup-code-hash', 32));
    const keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
    const scrypted = scryptSync(normalizeBackupCode(code), s, 32, { N: 16384, r: 8, p: 1 });
    const mac = createHmac('sha256', key).update('backup-code-scrypt-v1\0').update(scrypted).digest('base64url');
    return `s1.${keyId}.${mac}`;
  }

  it('is HMAC-SHA256 (keyed by the secret) of scrypt(code, salt) with N = 2^14, r = 8, p = 1', async () => {
    const hashes = await hasher.hashCodes(codes, salt);
    expect(hashes).toEqual(codes.map((code) => expectedHash(SECRET_A, code, salt)));
    expect(BACKUP_CODE_SCRYPT).toEqual({ N: 2 ** 14, r: 8, p: 1 });
    for (const hash of hashes) {
      // Fits the 64-character column of the TypeORM entity and migration.
      expect(hash).toMatch(/^s1\.[0-9a-f]{8}\.[A-Za-z0-9_-]{43}$/);
      expect(hash.length).toBeLessThanOrEqual(64);
      expect(hash).not.toContain(normalizeBackupCode(codes[0]!));
    }
    expect(new Set(hashes).size).toBe(codes.length);
  });

  it('finds the matching record among a set, for normalized variants, comparing every one', async () => {
    const hashes = await hasher.hashCodes(codes, salt);
    const records = hashes.map((hash) => ({ salt, hash }));
    expect(await hasher.findMatch('LMNPQ-RSTUV', records)).toBe(1);
    expect(await hasher.findMatch('lmnpq rstuv', records)).toBe(1);
    expect(await hasher.findMatch('WXYZ234567', records)).toBe(2);
    expect(await hasher.findMatch('ABCDE-FGHJL', records)).toBe(-1);
    expect(await hasher.findMatch('', records)).toBe(-1);
    expect(await hasher.findMatch('ABCDE-FGHJK', [])).toBe(-1);
    // Another salt, another secret, a tampered hash: no match.
    expect(await hasher.findMatch('ABCDE-FGHJK', [{ salt: 'other', hash: hashes[0]! }])).toBe(-1);
    expect(await new BackupCodeHasher(SECRET_B).findMatch('ABCDE-FGHJK', records)).toBe(-1);
    expect(await hasher.findMatch('ABCDE-FGHJK', [{ salt, hash: hashes[0]!.slice(0, -1) }])).toBe(-1);
    expect(await hasher.findMatch('ABCDE-FGHJK', [{ salt, hash: `s1.00000000.${hashes[0]!.slice(12)}` }])).toBe(-1);
  });

  it('keeps matching sets made under a previous secret, and only while it is listed', async () => {
    const old = (await new BackupCodeHasher(SECRET_B).hashCodes(codes, salt)).map((hash) => ({ salt, hash }));
    expect(await new BackupCodeHasher(SECRET_A, [SECRET_B]).findMatch(codes[2]!, old)).toBe(2);
    expect(await new BackupCodeHasher(SECRET_A).findMatch(codes[2]!, old)).toBe(-1);
  });

  it('still verifies format-0 hashes (one fast HMAC, a salt per code), alone or beside s1 ones', async () => {
    const legacy = codes.map((code, i) => ({ salt: `salt-${i}`, hash: hasher.hash(code, `salt-${i}`) }));
    expect(await hasher.findMatch('wxyz2-34567', legacy)).toBe(2);
    expect(await hasher.findMatch('ABCDE-FGHJL', legacy)).toBe(-1);
    const mixed = [
      ...legacy.slice(0, 1),
      ...(await hasher.hashCodes(['QQQQQ-RRRRR'], salt)).map((hash) => ({ salt, hash })),
    ];
    expect(await hasher.findMatch('ABCDE-FGHJK', mixed)).toBe(0);
    expect(await hasher.findMatch('QQQQQ-RRRRR', mixed)).toBe(1);
  });

  it('checks a code against a whole set with one scrypt, not one per code', async () => {
    const many = Array.from({ length: 10 }, () => newBackupCode());
    const set = (await hasher.hashCodes(many, salt)).map((hash) => ({ salt, hash }));
    // CPU time of this process (the threadpool's scrypts included), not wall time: other
    // processes on a busy machine slow the clock, not the work counted here.
    const median = async (records: { salt: string; hash: string }[]): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const start = process.cpuUsage();
        await hasher.findMatch('ABCDE-FGHJK', records);
        const used = process.cpuUsage(start);
        times.push(used.user + used.system);
      }
      return times.sort((a, b) => a - b)[2]!;
    };
    const one = await median(set.slice(0, 1));
    const ten = await median(set);
    // One scrypt per code would make ten about 10× one; one per set keeps them alike.
    expect(ten).toBeLessThan(one * 4);
    // Ten sets with their own salts do cost ten (what a salt per code would cost).
    const salted = await Promise.all(
      many.map(async (code, i) => ({ salt: `s${i}`, hash: (await hasher.hashCodes([code], `s${i}`))[0]! })),
    );
    expect(await median(salted)).toBeGreaterThan(one * 4);
    // About 70 scrypts: seconds when the machine is busy.
  }, 30_000);
});
