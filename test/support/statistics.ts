/** The outcome of a two-sample Kolmogorov–Smirnov test. */
export interface KsResult {
  /** Largest distance between the two empirical distribution functions (0..1). */
  readonly d: number;
  /** Asymptotic p-value: how likely a distance this large is when both samples come from one distribution. */
  readonly p: number;
}

/**
 * Two-sample Kolmogorov–Smirnov test: compares whole distributions (location, spread and shape),
 * so a padding that matches the median but not the spread of real deliveries is caught.
 */
export function kolmogorovSmirnov(a: readonly number[], b: readonly number[]): KsResult {
  if (a.length === 0 || b.length === 0) throw new Error('kolmogorovSmirnov: empty sample');
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const value = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= value) i++;
    while (j < y.length && y[j]! <= value) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  const n = (x.length * y.length) / (x.length + y.length);
  // Stephens' small-sample correction of the statistic (Numerical Recipes, `kstwo`).
  return { d, p: kolmogorovQ((Math.sqrt(n) + 0.12 + 0.11 / Math.sqrt(n)) * d) };
}

/** The Kolmogorov distribution's survival function Q(λ) = P(K > λ). */
function kolmogorovQ(lambda: number): number {
  if (lambda <= 0) return 1;
  if (lambda < 1.18) {
    // 1 - P(K ≤ λ), with the series that converges fast for small λ.
    const factor = Math.sqrt(2 * Math.PI) / lambda;
    let sum = 0;
    for (let k = 1; k <= 20; k++) sum += Math.exp((-((2 * k - 1) ** 2) * Math.PI ** 2) / (8 * lambda ** 2));
    return Math.min(1, Math.max(0, 1 - factor * sum));
  }
  let sum = 0;
  for (let k = 1; k <= 100; k++) sum += (k % 2 === 1 ? 2 : -2) * Math.exp(-2 * k * k * lambda * lambda);
  return Math.min(1, Math.max(0, sum));
}

/** Summary of a latency sample, for messages and notes. */
export function describeSample(values: readonly number[]): string {
  const sorted = [...values].sort((p, q) => p - q);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  const sd = Math.sqrt(sorted.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, sorted.length - 1));
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `n=${sorted.length} min=${at(0).toFixed(1)} p50=${at(0.5).toFixed(1)} p90=${at(0.9).toFixed(1)} max=${sorted.at(-1)!.toFixed(1)} mean=${mean.toFixed(1)} sd=${sd.toFixed(1)} ms`;
}

/** The items in random order (Fisher–Yates), so groups interleave and drift hits them alike. */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
