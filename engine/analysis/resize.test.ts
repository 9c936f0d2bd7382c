import { describe, expect, it } from 'vitest';
import { matmul, matrix, svd } from '../linalg/index.ts';
import { loraBytes, parseResizeSpec, proposeResize, rankFor, truncatedFactors } from './resize.ts';

function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
}

describe('resize criteria (kohya resize_lora.py)', () => {
  const s = [8, 4, 2, 1, 0.5];
  it('sv_ratio keeps σᵢ > σ₁/ratio', () => {
    expect(rankFor(s, 64, 64, 'sv_ratio', 3)).toBe(2);
    expect(rankFor(s, 64, 64, 'sv_ratio', 10)).toBe(4);
  });
  it('sv_fro: the first k whose cumulative σ² share reaches target²', () => {
    // shares of σ²: 64, 80, 84, 85, 85.25 of 85.25
    expect(rankFor(s, 64, 64, 'sv_fro', Math.sqrt(80 / 85.25))).toBe(2);
    expect(rankFor(s, 64, 64, 'sv_fro', Math.sqrt(80.5 / 85.25))).toBe(3);
  });
  it('sv_cumulative: the first k whose cumulative σ share reaches the target', () => {
    // shares of σ: 8, 12, 14, 15, 15.5 of 15.5
    expect(rankFor(s, 64, 64, 'sv_cumulative', 12 / 15.5)).toBe(2);
    expect(rankFor(s, 64, 64, 'sv_cumulative', 12.1 / 15.5)).toBe(3);
  });
  it('clamps to [1, min(rows, cols) − 1] and keeps rank 1 for a vanishing ΔW', () => {
    expect(rankFor(s, 3, 64, 'sv_fro', 1)).toBe(2);
    expect(rankFor([1e-8, 1e-9], 64, 64, 'sv_fro', 1)).toBe(1);
    expect(rankFor(s, 64, 64, 'sv_ratio', 1.0001)).toBe(1);
  });
  it('parses the CLI spelling and refuses bad values by name', () => {
    expect(parseResizeSpec('sv_fro=0.99')).toEqual({ criterion: 'sv_fro', value: 0.99 });
    expect(parseResizeSpec('size=2MB')).toEqual({ criterion: 'size', value: 2e6 });
    expect(parseResizeSpec(' sv_ratio = 20 ')).toEqual({ criterion: 'sv_ratio', value: 20 });
    expect(() => parseResizeSpec('sv_fro=1.5')).toThrow(/fraction in \(0, 1\]/);
    expect(() => parseResizeSpec('rank=4')).toThrow(/unknown criterion "rank"/);
    expect(() => parseResizeSpec('sv_ratio=0.5')).toThrow(/must be > 1/);
    expect(() => parseResizeSpec('size=lots')).toThrow(/number of bytes/);
  });
});

describe('proposeResize', () => {
  it('reports retained energy and bytes per module', () => {
    const p = proposeResize([{ module: 'm', rows: 10, cols: 6, singularValues: [3, 4 / 3, 0] }], {
      criterion: 'sv_ratio',
      value: 2,
    });
    expect(p.modules[0].newRank).toBe(1);
    expect(p.modules[0].retainedEnergy).toBeCloseTo(9 / (9 + 16 / 9), 12);
    expect(p.modules[0].retainedFrobenius).toBeCloseTo(Math.sqrt(9 / (9 + 16 / 9)), 12);
    expect(p.modules[0].bytesBefore).toBe(loraBytes(10, 6, 3));
    expect(p.modules[0].bytesSaved).toBe(loraBytes(10, 6, 2));
  });
  it('size: stays within the byte target, keeps ≥ 1 direction per module, and spends bytes where σ² per byte is largest', () => {
    const spectra = [
      { module: 'a', rows: 16, cols: 16, singularValues: [10, 9, 8, 7] },
      { module: 'b', rows: 16, cols: 16, singularValues: [1, 0.5, 0.25, 0.1] },
    ];
    const target = loraBytes(16, 16, 5);
    const p = proposeResize(spectra, { criterion: 'size', value: target });
    expect(p.bytesAfter).toBeLessThanOrEqual(target);
    expect(p.modules.map((m) => m.newRank)).toEqual([4, 1]);
  });
});

describe('truncatedFactors', () => {
  it('equals the dense SVD truncation of ΔW (float64 one-sided Jacobi on the formed matrix)', () => {
    const rnd = seeded(42);
    const rows = 12;
    const cols = 9;
    const k = 5;
    const left = matrix(rows, k, Array.from({ length: rows * k }, rnd));
    const right = matrix(k, cols, Array.from({ length: k * cols }, rnd));
    const dense = matmul(left, right);
    const ref = svd(dense);
    for (const rank of [1, 3, 5]) {
      const { b, a, s } = truncatedFactors(left, right, rank);
      for (let i = 0; i < k; i++) expect(s[i]).toBeCloseTo(ref.s[i], 10);
      const got = matmul(b, a);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          let expected = 0;
          for (let t = 0; t < rank; t++)
            expected += ref.u.data[i * ref.u.cols + t] * ref.s[t] * ref.v.data[j * ref.v.cols + t];
          expect(Math.abs(got.data[i * cols + j] - expected)).toBeLessThan(1e-10);
        }
      }
    }
  });
});
