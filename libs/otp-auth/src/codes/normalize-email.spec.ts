import { normalizeEmail } from './normalize-email.js';

describe('normalizeEmail', () => {
  it('trims and lower-cases', () => {
    expect(normalizeEmail('  Ada@Example.COM \n')).toBe('ada@example.com');
  });

  it('composes accents (NFC), so the typed forms of one address are one string', () => {
    const composed = 'k\u00e9vin@example.com'; // é as one code point
    const decomposed = 'ke\u0301vin@example.com'; // e + combining acute accent
    expect(decomposed).not.toBe(composed);
    expect(normalizeEmail(decomposed)).toBe(composed);
    expect(normalizeEmail('KE\u0301VIN@EXAMPLE.COM')).toBe(composed);
    expect(normalizeEmail('kevin@exa\u0301mple.com')).toBe('kevin@ex\u00e1mple.com');
    // Composition only: a different accent, or none, stays a different address.
    expect(normalizeEmail('k\u00e8vin@example.com')).not.toBe(composed);
    expect(normalizeEmail('kevin@example.com')).not.toBe(composed);
  });

  it('is idempotent', () => {
    for (const email of [' KE\u0301VIN@Example.com', '\u0130nci@example.com', 'stra\u00dfe@example.com']) {
      const once = normalizeEmail(email);
      expect(normalizeEmail(once)).toBe(once);
      expect(once).toBe(once.normalize('NFC'));
    }
  });
});
