import type { Histogram, Moments } from './types.ts';

/** The paper's weight histograms use 50 bins. */
export const DEFAULT_BINS = 50;

/** Mean, population std, skewness and excess kurtosis, by two passes in float64. */
export function moments(values: ArrayLike<number>): Moments {
  const n = values.length;
  if (n === 0) return { count: 0, mean: 0, std: 0, skewness: null, excessKurtosis: null };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - mean;
    const d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  // A spread below rounding of the mean is no spread: higher moments would be noise.
  const degenerate = m2 === 0 || Math.sqrt(m2) <= 1e-12 * Math.abs(mean);
  return {
    count: n,
    mean,
    std: Math.sqrt(m2),
    skewness: degenerate ? null : m3 / m2 ** 1.5,
    excessKurtosis: degenerate ? null : m4 / (m2 * m2) - 3,
  };
}

/**
 * Fixed-width histogram over [min, max] of the data (a constant vector gets the range value ± 0.5 so the
 * bins keep a width). Non-finite values are an error: they mean a diverged run and would hide in a chart.
 */
export function histogram(
  values: ArrayLike<number>,
  bins = DEFAULT_BINS,
  range?: [number, number],
): Histogram {
  if (!Number.isInteger(bins) || bins < 1)
    throw new Error(`histogram: bins must be a positive integer, got ${bins}`);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) throw new Error(`histogram: non-finite value ${v} at index ${i}`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (range) [lo, hi] = range;
  if (values.length === 0) {
    lo = 0;
    hi = 1;
  } else if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1;
  }
  return { min: lo, max: hi, counts, moments: moments(values) };
}
