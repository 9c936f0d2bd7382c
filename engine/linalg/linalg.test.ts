import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import {
  fromRows,
  identity,
  type Matrix,
  matmul,
  matrix,
  maxAbsDiff,
  qr,
  sliceCols,
  svd,
  toTensor,
  transpose,
  truncatedSvd,
} from './index.ts';

interface Reference {
  m: number;
  n: number;
  s: number[];
  u: number[][];
  v: number[][];
  q?: number[][];
  r?: number[][];
}
const reference = JSON.parse(
  readFileSync(new URL('./fixtures/reference.json', import.meta.url), 'utf8'),
) as Record<'small' | 'wide' | 'large', Reference>;

/** Same formula as fixtures/make_reference.py. */
function structured(m: number, n: number): Matrix {
  const a = matrix(m, n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let t = 1; t <= 8; t++) {
        x += 0.6 ** t * Math.sin(0.37 * t * i + 0.11 * t * t + 1.0) * Math.cos(0.23 * t * j + 0.7 * t);
      }
      a.data[i * n + j] = x + 0.02 * Math.sin(0.913 * i * j + 0.5 * i - 0.3 * j);
    }
  }
  return a;
}

function random(m: number, n: number, seed: number): Matrix {
  let state = seed;
  const a = matrix(m, n);
  for (let i = 0; i < a.data.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    a.data[i] = state / 2 ** 31 - 1;
  }
  return a;
}

function reconstruct(u: Matrix, s: Float64Array, v: Matrix): Matrix {
  const us = matrix(u.rows, u.cols, u.data);
  for (let i = 0; i < u.rows; i++) for (let k = 0; k < u.cols; k++) us.data[i * u.cols + k] *= s[k];
  return matmul(us, transpose(v));
}

function orthogonalityError(q: Matrix): number {
  return maxAbsDiff(matmul(transpose(q), q), identity(q.cols));
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.abs(b[i]));
  return m;
}

beforeAll(async () => {
  await useTestBackend();
});

describe('qr', () => {
  it.each(['small', 'wide'] as const)('matches numpy (diag(r) ≥ 0) on the %s fixture', (name) => {
    const ref = reference[name];
    const a = structured(ref.m, ref.n);
    const { q, r } = qr(a);
    expect(maxAbsDiff(q, fromRows(ref.q!))).toBeLessThan(1e-12);
    expect(maxAbsDiff(r, fromRows(ref.r!))).toBeLessThan(1e-12);
    expect(maxAbsDiff(matmul(q, r), a)).toBeLessThan(1e-13);
    expect(orthogonalityError(q)).toBeLessThan(1e-14);
  });

  it('handles rank-deficient and zero columns', () => {
    const a = fromRows([
      [1, 0, 2],
      [2, 0, 4],
      [3, 0, 6],
      [4, 0, 8],
    ]);
    const { q, r } = qr(a);
    expect(maxAbsDiff(matmul(q, r), a)).toBeLessThan(1e-14);
    for (let i = 0; i < r.rows; i++) for (let j = 0; j < i; j++) expect(r.data[i * r.cols + j]).toBe(0);
  });
});

describe('svd (exact)', () => {
  it.each([
    'small',
    'wide',
  ] as const)('matches numpy singular values and vectors on the %s fixture', (name) => {
    const ref = reference[name];
    const a = structured(ref.m, ref.n);
    const { u, s, v } = svd(a);
    expect(maxRel(s, ref.s)).toBeLessThan(1e-12);
    expect(maxAbsDiff(u, fromRows(ref.u))).toBeLessThan(1e-10);
    expect(maxAbsDiff(v, fromRows(ref.v))).toBeLessThan(1e-10);
  });

  it('reconstructs random matrices of several shapes with orthonormal factors', () => {
    for (const [m, n] of [
      [1, 1],
      [7, 3],
      [3, 7],
      [20, 20],
      [40, 13],
    ]) {
      const a = random(m, n, m * 31 + n);
      const { u, s, v } = svd(a);
      expect(maxAbsDiff(reconstruct(u, s, v), a)).toBeLessThan(1e-12);
      expect(orthogonalityError(u)).toBeLessThan(1e-12);
      expect(orthogonalityError(v)).toBeLessThan(1e-12);
      for (let i = 1; i < s.length; i++) expect(s[i]).toBeLessThanOrEqual(s[i - 1]);
    }
  });

  it('completes u for a rank-deficient matrix and returns zero singular values', () => {
    const a = fromRows([
      [1, 2, 3],
      [2, 4, 6],
      [1, 2, 3],
      [0, 0, 0],
    ]);
    const { u, s, v } = svd(a);
    expect(s[0]).toBeCloseTo(Math.sqrt(6 * 14), 12);
    expect(Math.abs(s[1])).toBeLessThan(1e-12);
    expect(orthogonalityError(u)).toBeLessThan(1e-12);
    expect(maxAbsDiff(reconstruct(u, s, v), a)).toBeLessThan(1e-12);
  });

  it('follows the documented sign convention', () => {
    const { u } = svd(random(12, 5, 7));
    for (let k = 0; k < u.cols; k++) {
      const col = Array.from({ length: u.rows }, (_, i) => u.data[i * u.cols + k]);
      const largest = col.reduce((best, x) => (Math.abs(x) > Math.abs(best) ? x : best), 0);
      expect(largest).toBeGreaterThan(0);
    }
  });
});

describe('truncatedSvd', () => {
  const ref = reference.large;
  const a = structured(ref.m, ref.n);

  it('exact route keeps the top triplets', () => {
    const r = truncatedSvd(structured(9, 6), 3);
    expect(r.method).toBe('exact');
    expect(maxRel(r.s, reference.small.s.slice(0, 3))).toBeLessThan(1e-12);
  });

  it('subspace iteration on float64 data matches numpy', () => {
    const r = truncatedSvd(a, 6, { method: 'subspace', seed: 3 });
    expect(r.method).toBe('subspace');
    expect(r.residual).toBeLessThan(1e-10);
    expect(maxRel(r.s, ref.s)).toBeLessThan(1e-12);
    expect(maxAbsDiff(r.u, fromRows(ref.u))).toBeLessThan(1e-9);
    expect(maxAbsDiff(r.v, fromRows(ref.v))).toBeLessThan(1e-9);
  });

  it('subspace iteration with tfjs (float32) products is accurate to 1e-4 relative', () => {
    const t = toTensor(a);
    const before = tf.memory().numTensors;
    const r = truncatedSvd(t, 6, { exactLimit: 64 });
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
    expect(r.method).toBe('subspace');
    expect(maxRel(r.s, ref.s)).toBeLessThan(1e-4);
    const uRef = fromRows(ref.u);
    const vRef = fromRows(ref.v);
    expect(maxAbsDiff(r.u, uRef)).toBeLessThan(1e-4);
    expect(maxAbsDiff(r.v, vRef)).toBeLessThan(1e-4);
  });

  it('handles a numerically low-rank tensor (rank-deficient blocks fall back to Householder)', () => {
    const left = random(300, 3, 5);
    const right = random(3, 280, 6);
    const low = matmul(left, right);
    const exact = svd(low);
    const t = toTensor(low);
    const before = tf.memory().numTensors;
    const r = truncatedSvd(t, 2, { exactLimit: 64 });
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
    expect(maxRel(r.s, exact.s.slice(0, 2))).toBeLessThan(1e-5);
    const product = matmul(transpose(r.u), sliceCols(exact.u, 0, 2));
    expect(Math.abs(Math.abs(product.data[0]) - 1)).toBeLessThan(1e-5);
    expect(Math.abs(Math.abs(product.data[3]) - 1)).toBeLessThan(1e-5);
  });

  it('rejects a rank outside [1, min(m, n)]', () => {
    expect(() => truncatedSvd(structured(5, 4), 5)).toThrow(/rank must be an integer in \[1, 4\]/);
    expect(() => truncatedSvd(structured(5, 4), 0)).toThrow(/rank/);
  });
});
