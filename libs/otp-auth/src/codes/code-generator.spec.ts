import { developerCode, generateNumericCode } from './code-generator.js';

describe('generateNumericCode', () => {
  it.each([4, 6, 8, 10])('gives %i digits and nothing else', (length) => {
    for (let i = 0; i < 50; i++) {
      const code = generateNumericCode(length);
      expect(code).toHaveLength(length);
      expect(code).toMatch(new RegExp(`^[0-9]{${length}}$`));
    }
  });

  it('gives varied codes', () => {
    const codes = new Set(Array.from({ length: 20 }, () => generateNumericCode(6)));
    expect(codes.size).toBeGreaterThan(15);
  });

  it('draws leading digits uniformly (no modulo bias)', () => {
    const draws = 20_000;
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < draws; i++) {
      const first = Number(generateNumericCode(6)[0]);
      counts[first] = (counts[first] ?? 0) + 1;
    }
    // Each leading digit (0 included, so zero-padding works) gets 10% ± 2%; the standard
    // deviation per digit is ~0.21%, so this only fails on a real bias.
    for (const count of counts) {
      expect(count / draws).toBeGreaterThan(0.08);
      expect(count / draws).toBeLessThan(0.12);
    }
  });
});

describe('developerCode', () => {
  it.each([4, 6, 10])('gives %i zeros', (length) => {
    expect(developerCode(length)).toBe('0'.repeat(length));
  });
});
