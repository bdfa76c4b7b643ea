import { readFileSync } from 'node:fs';
import type { TotpOptions } from './totp.options.js';
import { resolveOtpAuthOptions } from '../options/resolve-options.js';
import type { OtpAuthStore } from '../store/otp-auth-store.interface.js';
import type { SessionService } from '../tokens/session.service.js';
import { TotpService } from './totp.service.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

type Algorithm = 'SHA1' | 'SHA256' | 'SHA512';

interface RfcVectors {
  hotp: {
    secret_ascii: string;
    secret_base32: string;
    algorithm: Algorithm;
    digits: 6;
    values: { counter: number; code: string }[];
  };
  totp: {
    period: number;
    t0: number;
    digits: 8;
    seeds: Record<Algorithm, { secret_ascii: string; secret_base32: string }>;
    values: { time: number; step_hex: string; algorithm: Algorithm; code: string }[];
  };
}

// RFC 4226 Appendix D and RFC 6238 Appendix B (with the errata's per-algorithm seeds).
const vectors = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/rfc-vectors.json', import.meta.url), 'utf8'),
) as RfcVectors;

const SECRET = 'totp-service-secret-0123456789abcdef';
// Only findCode/insertSuccessor are checked by resolveOtpAuthOptions; generate/matchStep never touch the store.
const store = { findCode() {}, insertSuccessor() {} } as unknown as OtpAuthStore;

function service(totp: TotpOptions = {}, clock?: () => number): TotpService {
  // generate/matchStep never open sessions, so no SessionService is needed.
  const config = resolveOtpAuthOptions({ secret: SECRET, store, totp, ...(clock ? { clock } : {}) });
  // Only generation and step matching are exercised here; neither touches sessions.
  return new TotpService(config, undefined as unknown as SessionService, new OtpAuthEvents(config));
}

describe('TotpService', () => {
  it('reads the RFC vectors file', () => {
    expect(vectors.hotp.values).toHaveLength(10);
    expect(vectors.totp.values).toHaveLength(18);
    expect(vectors.totp.period).toBe(30);
    expect(vectors.totp.t0).toBe(0);
  });

  describe('RFC 6238 Appendix B vectors', () => {
    it.each(vectors.totp.values)('$algorithm at T=$time s → $code', ({ time, step_hex, algorithm, code }) => {
      const seed = vectors.totp.seeds[algorithm];
      // The seeds are the ASCII strings of the RFC (per algorithm, as in the errata).
      expect(Buffer.from(seed.secret_ascii, 'ascii').length).toBe({ SHA1: 20, SHA256: 32, SHA512: 64 }[algorithm]);
      expect(Math.floor(time / vectors.totp.period)).toBe(Number.parseInt(step_hex, 16));
      const totp = service({ algorithm, digits: vectors.totp.digits, period: vectors.totp.period });
      expect(totp.generate(seed.secret_base32, time * 1000)).toBe(code);
    });

    it('covers all three algorithms and the 20000000000 s row (past 2038 and 2^32 s)', () => {
      const algorithms = new Set(vectors.totp.values.map((v) => v.algorithm));
      expect([...algorithms].sort()).toEqual(['SHA1', 'SHA256', 'SHA512']);
      expect(vectors.totp.values.filter((v) => v.time === 20_000_000_000)).toHaveLength(3);
    });
  });

  describe('RFC 4226 Appendix D vectors', () => {
    // TOTP is HOTP with the counter floor((t - T0) / period) (RFC 6238 §4.2, T0 = 0). The module only
    // exposes TOTP, so each HOTP counter C is checked as a TOTP code at t = C * 30 s (period 30), where
    // floor(C * 30 / 30) = C: the same HMAC-SHA1 + dynamic truncation path, 6 digits.
    const totp = service({ algorithm: vectors.hotp.algorithm, digits: vectors.hotp.digits, period: 30 });

    it.each(vectors.hotp.values)('counter $counter → $code', ({ counter, code }) => {
      expect(totp.generate(vectors.hotp.secret_base32, counter * 30 * 1000)).toBe(code);
      // Anywhere inside the step gives the same code.
      expect(totp.generate(vectors.hotp.secret_base32, counter * 30 * 1000 + 29_999)).toBe(code);
    });
  });

  describe('matchStep', () => {
    const secret = vectors.hotp.secret_base32;
    // Mid-step, so neither edge of the current step is involved.
    const now = 1_700_000_015_000;
    const counter = Math.floor(now / 30_000);
    const clock = () => now;
    /** The code of step `counter + offset`, through the module's own generation path. */
    const codeAt = (offset: number) => service().generate(secret, (counter + offset) * 30_000);

    it('uses distinct codes for the steps under test', () => {
      const codes = [-3, -2, -1, 0, 1, 2, 3].map(codeAt);
      expect(new Set(codes).size).toBe(codes.length);
      expect(codeAt(0)).toBe(service().generate(secret, now));
    });

    it('returns the current counter for the current code', () => {
      expect(service({}, clock).matchStep(secret, codeAt(0))).toBe(counter);
    });

    it('accepts the previous and next steps by default (window 1) and returns their counters', () => {
      const totp = service({}, clock);
      expect(totp.matchStep(secret, codeAt(-1))).toBe(counter - 1);
      expect(totp.matchStep(secret, codeAt(1))).toBe(counter + 1);
    });

    it('rejects steps two away by default', () => {
      const totp = service({}, clock);
      expect(totp.matchStep(secret, codeAt(-2))).toBeNull();
      expect(totp.matchStep(secret, codeAt(2))).toBeNull();
    });

    it('accepts only the current step with window 0', () => {
      const totp = service({ window: 0 }, clock);
      expect(totp.matchStep(secret, codeAt(0))).toBe(counter);
      expect(totp.matchStep(secret, codeAt(-1))).toBeNull();
      expect(totp.matchStep(secret, codeAt(1))).toBeNull();
    });

    it('accepts steps two away with window 2, but not three', () => {
      const totp = service({ window: 2 }, clock);
      expect(totp.matchStep(secret, codeAt(-2))).toBe(counter - 2);
      expect(totp.matchStep(secret, codeAt(-1))).toBe(counter - 1);
      expect(totp.matchStep(secret, codeAt(0))).toBe(counter);
      expect(totp.matchStep(secret, codeAt(1))).toBe(counter + 1);
      expect(totp.matchStep(secret, codeAt(2))).toBe(counter + 2);
      expect(totp.matchStep(secret, codeAt(-3))).toBeNull();
      expect(totp.matchStep(secret, codeAt(3))).toBeNull();
    });

    it('reads the clock at each call', () => {
      let t = now;
      const totp = service({}, () => t);
      const code = codeAt(0);
      expect(totp.matchStep(secret, code)).toBe(counter);
      t = now + 30_000;
      expect(totp.matchStep(secret, code)).toBe(counter);
      t = now + 60_000;
      expect(totp.matchStep(secret, code)).toBeNull();
    });

    it('rejects wrong codes, wrong lengths and another secret', () => {
      const totp = service({}, clock);
      const current = codeAt(0);
      const wrong = String((Number(current) + 1) % 1_000_000).padStart(6, '0');
      expect(totp.matchStep(secret, wrong)).toBeNull();
      expect(totp.matchStep(secret, current.slice(1))).toBeNull();
      expect(totp.matchStep(secret, `${current}0`)).toBeNull();
      expect(totp.matchStep(secret, '')).toBeNull();
      expect(totp.matchStep(vectors.totp.seeds.SHA256.secret_base32, current)).toBeNull();
    });

    it('honours the configured algorithm and digits', () => {
      const options: TotpOptions = { algorithm: 'SHA512', digits: 8 };
      const seed = vectors.totp.seeds.SHA512.secret_base32;
      const code = service(options).generate(seed, now);
      expect(code).toMatch(/^\d{8}$/);
      expect(service(options, clock).matchStep(seed, code)).toBe(counter);
      // The SHA-1 path does not accept it.
      expect(service({ digits: 8 }, clock).matchStep(seed, code)).toBeNull();
    });
  });
});
