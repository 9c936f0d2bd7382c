import { describe, expect, it } from 'vitest';
import { matmul, matrix, qr, svd, transpose } from '../linalg/index.ts';
import {
  effectiveRank,
  energyFractions,
  frobeniusOf,
  gramNorms,
  gramSingularValues,
  lowRankSvd,
  spectralNorm,
  stableRank,
  summarizeSpectrum,
} from './spectrum.ts';
import { seededValues } from './testing.ts';

function random(rows: number, cols: number, seed: number) {
  return matrix(rows, cols, seededValues(rows * cols, seed));
}

describe('lowRankSvd', () => {
  // rows × k · k × cols: k below both sides, between them, above both, equal, and degenerate shapes.
  const shapes: [number, number, number][] = [
    [20, 3, 15],
    [15, 3, 20],
    [6, 10, 9],
    [9, 10, 6],
    [4, 12, 5],
    [8, 8, 8],
    [1, 3, 7],
    [7, 3, 1],
    [5, 1, 5],
  ];
  for (const [rows, k, cols] of shapes) {
    it(`matches a dense SVD of left·right for ${rows} × ${k} · ${k} × ${cols}`, () => {
      const left = random(rows, k, rows * 100 + k);
      const right = random(k, cols, cols * 100 + k + 1);
      const dense = svd(matmul(left, right)).s;
      const got = lowRankSvd(left, right, true);
      const p = Math.min(rows, k, cols);
      const viaGram = gramSingularValues(left, right);
      expect(viaGram.length).toBe(p);
      for (let i = 0; i < p; i++) expect(Math.abs(viaGram[i] - dense[i])).toBeLessThan(1e-7 * dense[0]);
      expect(got.s.length).toBe(p);
      for (let i = 0; i < p; i++) expect(got.s[i]).toBeCloseTo(dense[i], 12);
      for (let i = p; i < dense.length; i++) expect(dense[i]).toBeLessThan(1e-12);
      // U·diag(s)·Vᵀ reconstructs left·right
      const { u, v } = got;
      const product = matmul(left, right);
      let err = 0;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          let x = 0;
          for (let q = 0; q < p; q++) x += u!.data[i * u!.cols + q] * got.s[q] * v!.data[j * v!.cols + q];
          err = Math.max(err, Math.abs(x - product.data[i * cols + j]));
        }
      }
      expect(err).toBeLessThan(1e-12);
    });
  }

  it('gives zeros for a zero factor (LoRA at init: B = 0)', () => {
    const got = lowRankSvd(matrix(10, 4), random(4, 12, 3));
    expect(Array.from(got.s)).toEqual([0, 0, 0, 0]);
  });

  it('rejects mismatched factors', () => {
    expect(() => lowRankSvd(matrix(3, 2), matrix(3, 4))).toThrow(/left is 3 × 2 but right is 3 × 4/);
  });
});

describe('gramNorms', () => {
  it('gives ‖LR‖_F and ‖LR‖_2 of a dense SVD from LᵀL and RRᵀ', () => {
    for (const [rows, k, cols] of [
      [30, 12, 25],
      [10, 16, 9],
    ]) {
      const left = random(rows, k, 3 + k);
      const right = random(k, cols, 4 + k);
      const s = svd(matmul(left, right)).s;
      const got = gramNorms(matmul(transpose(left), left), matmul(right, transpose(right)));
      expect(got.frobenius).toBeCloseTo(Math.sqrt(s.reduce((a, x) => a + x * x, 0)), 10);
      expect(got.spectral).toBeCloseTo(s[0], 8);
    }
    expect(gramNorms(matrix(3, 3), matrix(3, 3))).toEqual({ frobenius: 0, spectral: 0, vector: null });
    // warm start from a previous direction gives the same value
    const left = random(20, 6, 1);
    const right = random(6, 18, 2);
    const gl = matmul(transpose(left), left);
    const gr = matmul(right, transpose(right));
    const cold = gramNorms(gl, gr);
    expect(gramNorms(gl, gr, cold.vector!).spectral).toBeCloseTo(cold.spectral, 10);
  });
});

describe('spectrum summaries', () => {
  it('computes effective rank, stable rank and energy shares from their definitions', () => {
    const s = [4, 2, 1, 1];
    const p = s.map((x) => x / 8);
    expect(effectiveRank(s)).toBeCloseTo(Math.exp(-p.reduce((h, x) => h + x * Math.log(x), 0)), 14);
    expect(stableRank(s)).toBeCloseTo(22 / 16, 14);
    expect(energyFractions(s)).toEqual([
      { k: 1, fraction: 16 / 22 },
      { k: 2, fraction: 20 / 22 },
      { k: 4, fraction: 1 },
    ]);
    expect(effectiveRank([1, 1, 1])).toBeCloseTo(3, 14);
    const zero = summarizeSpectrum([0, 0], 'low-rank', 2);
    expect(zero.effectiveRank).toBe(0);
    expect(zero.stableRank).toBe(0);
  });
});

describe('norms', () => {
  it('spectral norm equals the top singular value of a dense SVD (Gram eigenvalue and power-iteration paths)', () => {
    for (const [rows, cols] of [
      [7, 5],
      [40, 60],
      [90, 50],
      [100, 80],
    ]) {
      const a = random(rows, cols, rows + cols);
      expect(spectralNorm(a.data, rows, cols)).toBeCloseTo(svd(a).s[0], 10);
    }
    expect(spectralNorm(new Float64Array(40 * 40), 40, 40)).toBe(0);
    // both sides above 256: A = 3·u₁v₁ᵀ + u₂v₂ᵀ with orthonormal u, v has ‖A‖₂ = 3
    const u = qr(random(300, 2, 5)).q;
    const v = qr(random(280, 2, 6)).q;
    const big = new Float64Array(300 * 280);
    for (let i = 0; i < 300; i++) {
      for (let j = 0; j < 280; j++)
        big[i * 280 + j] = 3 * u.data[i * 2] * v.data[j * 2] + u.data[i * 2 + 1] * v.data[j * 2 + 1];
    }
    expect(spectralNorm(big, 300, 280)).toBeCloseTo(3, 10);
  });

  it('Frobenius norm is the root of the sum of squares', () => {
    expect(frobeniusOf([3, 4, 12])).toBe(13);
  });
});
