import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.ts';
import { EigCancelledError, eigenvalues } from './eig.ts';
import { fromRows, type Matrix, matrix } from './matrix.ts';

interface Case {
  name: string;
  n: number;
  matrix: number[];
  re: number[];
  im: number[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../analysis/fixtures/eig-reference.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

/** Greedy nearest matching of two eigenvalue lists; returns the largest distance of a matched pair. */
function maxMatchedDistance(a: { re: ArrayLike<number>; im: ArrayLike<number> }, b: typeof a): number {
  const used = new Array(b.re.length).fill(false);
  let worst = 0;
  for (let i = 0; i < a.re.length; i++) {
    let best = -1;
    let bestD = Number.POSITIVE_INFINITY;
    for (let j = 0; j < b.re.length; j++) {
      if (used[j]) continue;
      const d = Math.hypot(a.re[i] - b.re[j], a.im[i] - b.im[j]);
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    used[best] = true;
    worst = Math.max(worst, bestD);
  }
  return worst;
}

function seededMatrix(n: number, seed: number): Matrix {
  const random = mulberry32(seed);
  const m = matrix(n, n);
  for (let i = 0; i < n * n; i++) m.data[i] = random() - 0.5;
  return m;
}

describe('eigenvalues', () => {
  for (const c of fixture.cases) {
    it(`agrees with numpy.linalg.eigvals on ${c.name}`, () => {
      const got = eigenvalues(matrix(c.n, c.n, c.matrix));
      const scale = Math.max(...c.re.map((r, i) => Math.hypot(r, c.im[i])));
      expect(got.re.length).toBe(c.n);
      expect(maxMatchedDistance(got, c)).toBeLessThan(1e-9 * scale * c.n);
    });
  }

  it('satisfies the characteristic polynomial: Σλ = trace(A), Σλ² = trace(A²), conjugate pairs', () => {
    const n = 30;
    const a = seededMatrix(n, 7);
    const { re, im } = eigenvalues(a);
    let trace = 0;
    let trace2 = 0;
    for (let i = 0; i < n; i++) {
      trace += a.data[i * n + i];
      for (let k = 0; k < n; k++) trace2 += a.data[i * n + k] * a.data[k * n + i];
    }
    let sum = 0;
    let sumIm = 0;
    let sum2 = 0;
    for (let i = 0; i < n; i++) {
      sum += re[i];
      sumIm += im[i];
      sum2 += re[i] * re[i] - im[i] * im[i];
      if (im[i] > 0) {
        expect(re[i + 1]).toBeCloseTo(re[i], 12);
        expect(im[i + 1]).toBeCloseTo(-im[i], 12);
      }
    }
    expect(sum).toBeCloseTo(trace, 10);
    expect(sumIm).toBeCloseTo(0, 10);
    expect(sum2).toBeCloseTo(trace2, 10);
  });

  it('finds the roots of a polynomial from its companion matrix', () => {
    // (x − 1)(x − 2)(x − 3)(x² + 1) = x⁵ − 6x⁴ + 12x³ − 12x² + 11x − 6
    const coeffs = [-6, 12, -12, 11, -6];
    const n = coeffs.length;
    const c = matrix(n, n);
    for (let j = 0; j < n; j++) c.data[j] = -coeffs[j];
    for (let i = 1; i < n; i++) c.data[i * n + i - 1] = 1;
    const got = eigenvalues(c);
    const expected = { re: [1, 2, 3, 0, 0], im: [0, 0, 0, 1, -1] };
    expect(maxMatchedDistance(got, expected)).toBeLessThan(1e-10);
  });

  it('handles triangular, zero, 1 × 1 and rotation matrices', () => {
    const tri = fromRows([
      [4, 1, 2],
      [0, -3, 5],
      [0, 0, 0.5],
    ]);
    expect(maxMatchedDistance(eigenvalues(tri), { re: [4, -3, 0.5], im: [0, 0, 0] })).toBeLessThan(1e-14);
    expect(Array.from(eigenvalues(matrix(3, 3)).re)).toEqual([0, 0, 0]);
    expect(eigenvalues(fromRows([[-2.5]])).re[0]).toBe(-2.5);
    const rot = fromRows([
      [Math.cos(0.3), -Math.sin(0.3)],
      [Math.sin(0.3), Math.cos(0.3)],
    ]);
    const r = eigenvalues(rot);
    expect(
      maxMatchedDistance(r, { re: [Math.cos(0.3), Math.cos(0.3)], im: [0.3, -0.3].map(Math.sin) }),
    ).toBeLessThan(1e-14);
  });

  it('reports monotone progress ending at 1 and can be cancelled', () => {
    const a = seededMatrix(40, 3);
    const seen: number[] = [];
    eigenvalues(a, { onProgress: (f) => seen.push(f) });
    expect(seen.length).toBeGreaterThan(10);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    expect(seen.at(-1)).toBe(1);
    let polls = 0;
    expect(() => eigenvalues(a, { shouldStop: () => ++polls > 5 })).toThrow(EigCancelledError);
  });

  it('rejects non-square and non-finite input with a clear message', () => {
    expect(() => eigenvalues(matrix(2, 3))).toThrow(/square/);
    expect(() => eigenvalues(matrix(2, 2, [1, Number.NaN, 0, 1]))).toThrow(/non-finite/);
  });
});
