import { describe, expect, it } from 'vitest';
import { histogram, moments } from './distribution.ts';
import { seededValues } from './testing.ts';

describe('moments', () => {
  it('matches closed forms for 1..n (discrete uniform): skewness 0, excess kurtosis −6(n²+1)/(5(n²−1))', () => {
    const n = 101;
    const x = Array.from({ length: n }, (_, i) => i + 1);
    const m = moments(x);
    expect(m.mean).toBeCloseTo(51, 12);
    expect(m.std).toBeCloseTo(Math.sqrt((n * n - 1) / 12), 12);
    expect(m.skewness).toBeCloseTo(0, 12);
    expect(m.excessKurtosis).toBeCloseTo((-6 * (n * n + 1)) / (5 * (n * n - 1)), 12);
  });

  it('matches a direct computation on skewed data', () => {
    const x = Array.from(seededValues(1000, 3), (v) => Math.exp(3 * v));
    const mean = x.reduce((a, b) => a + b) / x.length;
    const c = (p: number) => x.reduce((a, b) => a + (b - mean) ** p, 0) / x.length;
    const m = moments(x);
    expect(m.skewness).toBeCloseTo(c(3) / c(2) ** 1.5, 10);
    expect(m.excessKurtosis).toBeCloseTo(c(4) / c(2) ** 2 - 3, 10);
  });

  it('gives null shape statistics for constant data', () => {
    const m = moments([2, 2, 2]);
    expect(m.std).toBe(0);
    expect(m.skewness).toBeNull();
    expect(m.excessKurtosis).toBeNull();
  });
});

describe('histogram', () => {
  it('counts values into fixed-width bins over [min, max], the maximum in the last bin', () => {
    const h = histogram([0, 0.1, 0.24, 0.25, 0.5, 0.99, 1], 4);
    expect(h.min).toBe(0);
    expect(h.max).toBe(1);
    expect(h.counts).toEqual([3, 1, 1, 2]);
  });

  it('agrees with direct bin assignment on random data and sums to the count', () => {
    const x = seededValues(5000, 9);
    const h = histogram(x, 50);
    const width = (h.max - h.min) / 50;
    const direct = new Array(50).fill(0);
    for (const v of x) direct[Math.min(49, Math.floor((v - h.min) / width))] += 1;
    expect(h.counts).toEqual(direct);
    expect(h.counts.reduce((a, b) => a + b)).toBe(5000);
  });

  it('keeps a width for constant data and rejects non-finite values', () => {
    const h = histogram([3, 3], 2);
    expect([h.min, h.max]).toEqual([2.5, 3.5]);
    expect(h.counts).toEqual([0, 2]);
    expect(() => histogram([1, Number.NaN])).toThrow(/non-finite value NaN at index 1/);
  });
});
