import { afterEach, describe, expect, it } from 'vitest';
import { randomValues } from '../parity.ts';
import { cxxAvailable } from './compile.ts';
import { cpuOps, cpuOpsStatus, setCpuOps } from './cpu-ops.ts';

/**
 * The compiled elementwise kernels against float64 math. The fused kernels built on them (norms, RoPE,
 * activations, attention, AdamW) are checked against the composed ops in fused.test.ts.
 */

const ops = cpuOps();

/** Largest |got − want| / max(|want|, floor) over the arrays. */
function worst(got: Float32Array, want: (i: number) => number, floor = 1e-30): number {
  let w = 0;
  for (let i = 0; i < got.length; i++) {
    const e = want(i);
    w = Math.max(w, Math.abs(got[i] - e) / Math.max(Math.abs(e), floor));
  }
  return w;
}

/** erf by its Maclaurin series, in float64 (to about 1e-13 for |x| ≤ 3). */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const scaled = (size: number, seed: number, scale: number) => randomValues(size, seed).map((v) => v * scale);

describe('compiled CPU kernels', () => {
  afterEach(() => {
    delete process.env.STUDIO_CPU_OPS;
    setCpuOps(null);
  });

  it('are off, with the reason, under STUDIO_CPU_OPS=off', () => {
    process.env.STUDIO_CPU_OPS = 'off';
    setCpuOps(null);
    expect(cpuOpsStatus()).toEqual({ ops: null, reason: 'turned off by STUDIO_CPU_OPS=off' });
  });

  it.runIf(cxxAvailable())('build and load wherever a C++ compiler is present', () => {
    // a build failure must fail here, not pass silently as the JS route
    expect(cpuOpsStatus().reason).toMatch(/^compiled CPU kernels/);
  });

  // inputs over the ranges that matter: tiny (where 1 − 2/(e^2x + 1) loses digits), ordinary, and saturating
  const x = Float32Array.from([
    ...scaled(5000, 3, 8),
    ...scaled(500, 4, 1e-5),
    0,
    -0,
    30,
    -30,
    87,
    -87,
    -100,
  ]);

  it.runIf(ops)('exp, tanh and sigmoid are within a few float32 ulps (5e-7 relative) of float64', () => {
    const y = new Float32Array(x.length);
    ops!.unary('Exp', x, y);
    expect(worst(y, (i) => Math.exp(x[i]), 1e-37)).toBeLessThan(5e-7);
    ops!.unary('Tanh', x, y);
    expect(worst(y, (i) => Math.tanh(x[i]))).toBeLessThan(5e-7);
    ops!.unary('Sigmoid', x, y);
    expect(worst(y, (i) => 1 / (1 + Math.exp(-x[i])), 1e-37)).toBeLessThan(5e-7);
  });

  it.runIf(ops)('erf is within its approximation error (1.5e-7, absolute) and float32 rounding', () => {
    const v = Float32Array.from([...scaled(5000, 9, 3), ...scaled(100, 10, 1e-5), 0]);
    const y = new Float32Array(v.length);
    ops!.unary('Erf', v, y);
    expect(worst(y, (i) => erf(v[i]), 1)).toBeLessThan(5e-7);
  });

  it.runIf(ops)('keep NaN, and overflow to ∞ and underflow to 0 as float32 rounding of e^x does', () => {
    const v = Float32Array.from([Number.NaN, 1000, -1000]);
    const y = new Float32Array(3);
    ops!.unary('Exp', v, y);
    expect([Number.isNaN(y[0]), y[1], y[2]]).toEqual([true, Infinity, 0]);
    ops!.unary('Tanh', v, y);
    expect([Number.isNaN(y[0]), y[1], y[2]]).toEqual([true, 1, -1]);
  });

  it.runIf(ops)('broadcast rank-3 operands as numpy does, in place too', () => {
    const a = randomValues(6 * 70_000, 5);
    const row = randomValues(70_000, 6);
    const col = randomValues(6, 7);
    const y = new Float32Array(a.length);
    ops!.binary('Sub', a, [1, 6, 70_000], row, [1, 1, 70_000], y);
    expect(worst(y, (i) => Math.fround(a[i] - row[i % 70_000]), 1)).toBe(0);
    ops!.binary('Div', a, [1, 6, 70_000], col, [1, 6, 1], y);
    expect(worst(y, (i) => Math.fround(a[i] / col[Math.floor(i / 70_000)]), 1)).toBe(0);
    const copy = a.slice();
    ops!.binary('Mul', copy, [1, 1, a.length], a, [1, 1, a.length], copy);
    expect(worst(copy, (i) => Math.fround(a[i] * a[i]), 1)).toBe(0);
  });

  it.runIf(ops)('softmax and log-softmax rows match float64, with each row log-sum-exp', () => {
    const rows = 7;
    const cols = 3001;
    const s = scaled(rows * cols, 8, 20);
    const lse64 = Array.from({ length: rows }, (_, r) => {
      const row = Array.from(s.subarray(r * cols, (r + 1) * cols));
      const max = Math.max(...row);
      return max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
    });
    const y = new Float32Array(s.length);
    const lse = new Float32Array(rows);
    ops!.softmax(s, y, rows, cols, lse);
    expect(worst(y, (i) => Math.exp(s[i] - lse64[Math.floor(i / cols)]), 1e-30)).toBeLessThan(2e-5);
    expect(worst(lse, (r) => lse64[r], 1)).toBeLessThan(1e-6);
    ops!.logSoftmax(s, y, rows, cols);
    expect(worst(y, (i) => s[i] - lse64[Math.floor(i / cols)], 1)).toBeLessThan(1e-6);
  });

  it.runIf(ops)('sum squares in float64', () => {
    const x = Float32Array.from([...scaled(100_001, 11, 3), 1e20, 1e-20]);
    let want = 0;
    for (const v of x) want += v * v;
    expect(Math.abs(ops!.squaredSum(x) - want) / want).toBeLessThan(1e-12);
    expect(ops!.squaredSum(new Float32Array(0))).toBe(0);
  });

  // every tile height and panel count, column tails, a k past one pass (512), and LoRA's shapes
  const products: [number, number, number][] = [
    [1, 1, 1],
    [13, 5, 3],
    [25, 17, 7],
    [7, 40, 2],
    [30, 70, 600],
    [12, 16, 1025],
    [256, 16, 300],
    [64, 130, 16],
    [3, 200, 65],
  ];
  for (const [m, n, k] of products)
    for (const [transA, transB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ])
      it.runIf(ops)(
        `small-dimension product ${transA ? 'aᵀ' : 'a'}·${transB ? 'bᵀ' : 'b'} at m ${m}, n ${n}, k ${k} matches float64`,
        () => {
          const a = randomValues(m * k, m + n);
          const b = randomValues(k * n, k + 1);
          const c = new Float32Array(m * n).fill(Number.NaN);
          ops!.sgemm(transA, transB, m, n, k, a, b, c);
          const want = (i: number) => {
            const [r, col] = [Math.floor(i / n), i % n];
            let sum = 0;
            for (let l = 0; l < k; l++)
              sum += a[transA ? l * m + r : r * k + l] * b[transB ? col * k + l : l * n + col];
            return sum;
          };
          // float32 sums of k products: error grows like √k ulps of the terms (|a|, |b| ≤ 1)
          expect(worst(c, want, Math.sqrt(k))).toBeLessThan(2e-6);
        },
      );
});
