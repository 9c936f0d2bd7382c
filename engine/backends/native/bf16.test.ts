import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bf16ToF32, f32ToBf16 } from '../../safetensors/dtypes.ts';
import { FrozenWeight } from '../frozen.ts';
import { ensureGradients } from '../gradients.ts';
import { maxRelativeDiff, randomValues, referenceMatMul } from '../parity.ts';
import { bf16Kernel, bf16Status, setBf16Kernel } from './bf16.ts';
import { nativeCacheDir } from './compile.ts';
import { activateNative } from './index.ts';

/**
 * The AVX512-BF16 product against float64 products of the same bf16-rounded operands: only the float32
 * accumulation order may differ. Skipped where the CPU lacks the instructions; where it has them the kernel must
 * build (a compile error would otherwise pass as "unsupported").
 */

const cpuHasBf16 =
  process.platform === 'linux' && /\bavx512_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const kernel = bf16Kernel();

const rounded = (x: Float32Array) => bf16ToF32(f32ToBf16(x));

describe('bf16 kernel probe', () => {
  afterEach(() => {
    delete process.env.STUDIO_BF16;
    setBf16Kernel(null);
  });

  it('is off, with the reason, under STUDIO_BF16=off', () => {
    process.env.STUDIO_BF16 = 'off';
    setBf16Kernel(null);
    expect(bf16Status()).toEqual({ kernel: null, reason: 'turned off by STUDIO_BF16=off' });
    delete process.env.STUDIO_BF16;
    setBf16Kernel(false);
    expect(bf16Status().kernel).toBeNull();
  });

  it.runIf(cpuHasBf16)('builds and loads where the CPU has AVX512-BF16', () => {
    expect(bf16Status().reason).toMatch(/^AVX512-BF16 kernel/);
  });

  it('keeps compiled kernels in the user cache', () => {
    expect(nativeCacheDir({}, '/home/u')).toBe('/home/u/.cache/adapter-studio/native');
    expect(nativeCacheDir({ XDG_CACHE_HOME: '/c' }, '/home/u')).toBe('/c/adapter-studio/native');
    expect(nativeCacheDir({ STUDIO_CACHE_DIR: '/s' }, '/home/u')).toBe('/s/native');
  });
});

describe.runIf(kernel)('AVX512-BF16 product', () => {
  // ragged in every direction: rows past a 6-row tile, columns past a 16-column panel and a 64-column block,
  // odd k (a zero-padded last pair), k past a 256-pair block, and a product big enough for two threads
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 17, 3],
    [13, 70, 61],
    [6, 64, 512],
    [25, 129, 1027],
    [64, 256, 1024],
  ];
  for (const [m, n, k] of shapes) {
    for (const transB of [true, false]) {
      it(`[${m} × ${k}]·${transB ? `[${n} × ${k}]ᵀ` : `[${k} × ${n}]`}, with and without an addend (itself or another array)`, () => {
        const a = randomValues(m * k, m + n);
        const b = f32ToBf16(randomValues(n * k, k));
        const c0 = randomValues(m * n, 3);
        const ref = referenceMatMul(
          rounded(a),
          [m, k],
          bf16ToF32(b),
          transB ? [n, k] : [k, n],
          false,
          transB,
        );
        const c = new Float32Array(m * n).fill(Number.NaN);
        kernel!.gemm(transB, m, n, k, a, b, c, null);
        expect(maxRelativeDiff(c, ref.values)).toBeLessThan(1e-5);
        const withC0 = ref.values.map((v, i) => v + c0[i]);
        const sum = c0.slice();
        kernel!.gemm(transB, m, n, k, a, b, sum, sum);
        expect(maxRelativeDiff(sum, withC0)).toBeLessThan(1e-5);
        const other = new Float32Array(m * n).fill(Number.NaN);
        kernel!.gemm(transB, m, n, k, a, b, other, c0);
        expect(maxRelativeDiff(other, withC0)).toBeLessThan(1e-5);
      });
    }
  }

  it('refuses arrays shorter than their shape', () => {
    expect(() =>
      kernel!.gemm(true, 2, 3, 4, new Float32Array(8), new Uint16Array(11), new Float32Array(6), null),
    ).toThrow(/do not hold \[2 × 4\]·\[3 × 4\]/);
  });
});

describe.runIf(kernel)('bf16 frozen weights on the kernel', () => {
  beforeAll(async () => {
    await ensureGradients();
    await activateNative();
  });

  it('x·Wᵀ, x·W, their input gradients and a block of rows round x (and dy) to bf16, nothing else', () => {
    const [rows, cols, n] = [97, 61, 13];
    const exact = rounded(randomValues(rows * cols, 3));
    const weight = FrozenWeight.fromValues('BF16', [rows, cols], f32ToBf16(exact));
    for (const transposeWeight of [true, false]) {
      const k = transposeWeight ? cols : rows;
      const out = transposeWeight ? rows : cols;
      const x = randomValues(n * k, 5);
      const dy = randomValues(n * out, 7);
      const { y, dx } = tf.tidy(() => {
        const xt = tf.tensor2d(x, [n, k]);
        const grad = tf.grad((v: tf.Tensor) =>
          tf.sum(tf.mul(weight.matmul(v as tf.Tensor2D, transposeWeight), tf.tensor2d(dy, [n, out]))),
        )(xt);
        return { y: weight.matmul(xt, transposeWeight).dataSync().slice(), dx: grad.dataSync().slice() };
      });
      const ref = referenceMatMul(rounded(x), [n, k], exact, [rows, cols], false, transposeWeight);
      expect(maxRelativeDiff(y, ref.values)).toBeLessThan(1e-5);
      const refDx = referenceMatMul(rounded(dy), [n, out], exact, [rows, cols], false, !transposeWeight);
      expect(maxRelativeDiff(dx, refDx.values)).toBeLessThan(1e-5);
    }
    const block = weight.rowBlock(40, 9);
    const x = randomValues(n * cols, 9);
    const y = tf.tidy(() =>
      block
        .matmul(tf.tensor2d(x, [n, cols]), true)
        .dataSync()
        .slice(),
    );
    const ref = referenceMatMul(
      rounded(x),
      [n, cols],
      exact.subarray(40 * cols, 49 * cols),
      [9, cols],
      false,
      true,
    );
    expect(maxRelativeDiff(y, ref.values)).toBeLessThan(1e-5);
    block.dispose();
    weight.dispose();
  });

  it('sums an addend inside the product, with its gradient passed through', () => {
    const [n, k, out] = [13, 61, 97];
    const exact = rounded(randomValues(out * k, 3));
    const weight = FrozenWeight.fromValues('BF16', [out, k], f32ToBf16(exact));
    const x = randomValues(n * k, 5);
    const addend = randomValues(n * out, 6);
    const dy = randomValues(n * out, 7);
    const { y, dAddend } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, k]);
      const grad = tf.grad((v: tf.Tensor) =>
        tf.sum(tf.mul(weight.matmul(xt, true, null, v as tf.Tensor2D), tf.tensor2d(dy, [n, out]))),
      )(tf.tensor2d(addend, [n, out]));
      const sum = weight.matmul(xt, true, null, tf.tensor2d(addend, [n, out]));
      return { y: sum.dataSync().slice(), dAddend: grad.dataSync().slice() };
    });
    const ref = referenceMatMul(rounded(x), [n, k], exact, [out, k], false, true);
    expect(
      maxRelativeDiff(
        y,
        ref.values.map((v, i) => v + addend[i]),
      ),
    ).toBeLessThan(1e-5);
    expect(Array.from(dAddend)).toEqual(Array.from(dy));
    weight.dispose();
  });
});
