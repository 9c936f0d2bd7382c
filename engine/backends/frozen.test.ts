import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../safetensors/dtypes.ts';
import { FrozenWeight } from './frozen.ts';
import { ensureGradients } from './gradients.ts';
import { setBf16Kernel } from './native/bf16.ts';
import { setFrozenBlockElements } from './native/frozen.ts';
import { activateNative } from './native/index.ts';
import { maxRelativeDiff, randomValues, referenceMatMul } from './parity.ts';

/**
 * Frozen weights held in bf16/f16/f32 on the native backend: products in both orientations (and their input
 * gradients), lookups, replacement and snapshots, against float64 products of the exactly widened values. The
 * AVX512-BF16 kernel, which rounds x to bf16, is off here (bf16.test.ts tests it): this is the widening route.
 */

let previousBlock = 0;
beforeAll(async () => {
  await ensureGradients();
  await activateNative();
  setBf16Kernel(false);
  // 97 × 61 weights then span several widening blocks, with a ragged last one
  previousBlock = setFrozenBlockElements(700);
});
afterAll(() => {
  setFrozenBlockElements(previousBlock);
  setBf16Kernel(null);
});

const ROWS = 97;
const COLS = 61;

function weightOf(dtype: 'F32' | 'BF16' | 'F16', seed: number) {
  const f32 = randomValues(ROWS * COLS, seed);
  const held = dtype === 'F32' ? f32 : dtype === 'BF16' ? f32ToBf16(f32) : f32ToF16(f32);
  const exact =
    dtype === 'F32' ? f32 : dtype === 'BF16' ? bf16ToF32(held as Uint16Array) : f16ToF32(held as Uint16Array);
  return { weight: FrozenWeight.fromValues(dtype, [ROWS, COLS], held), exact };
}

describe('FrozenWeight on the native backend', () => {
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    it(`${dtype}: x·Wᵀ and x·W equal float64 products of the widened weight, and so do their input gradients`, () => {
      const { weight, exact } = weightOf(dtype, 3);
      expect(weight.dtype).toBe(dtype);
      expect(weight.bytes).toBe(ROWS * COLS * (dtype === 'F32' ? 4 : 2));
      for (const transposeWeight of [true, false]) {
        const k = transposeWeight ? COLS : ROWS;
        const n = transposeWeight ? ROWS : COLS;
        const x = randomValues(13 * k, 5);
        const dy = randomValues(13 * n, 7);
        const { y, dx } = tf.tidy(() => {
          const xt = tf.tensor2d(x, [13, k]);
          const out = weight.matmul(xt, transposeWeight);
          const grad = tf.grad((v: tf.Tensor) =>
            tf.sum(tf.mul(weight.matmul(v as tf.Tensor2D, transposeWeight), tf.tensor2d(dy, [13, n]))),
          )(xt);
          return { y: out.dataSync().slice(), dx: grad.dataSync().slice() };
        });
        const ref = referenceMatMul(x, [13, k], exact, [ROWS, COLS], false, transposeWeight);
        expect(maxRelativeDiff(y, ref.values)).toBeLessThan(2e-5);
        const refDx = referenceMatMul(dy, [13, n], exact, [ROWS, COLS], false, !transposeWeight);
        expect(maxRelativeDiff(dx, refDx.values)).toBeLessThan(2e-5);
      }
      weight.dispose();
    });

    it(`${dtype}: a block of rows holds the rows as they are; rows outside the weight are refused`, () => {
      const { weight, exact } = weightOf(dtype, 13);
      const block = weight.rowBlock(90, 7);
      expect(block.shape).toEqual([7, COLS]);
      expect(block.dtype).toBe(dtype);
      expect(Array.from(block.float32())).toEqual(Array.from(exact.subarray(90 * COLS, 97 * COLS)));
      block.dispose();
      expect(weight.isDisposed).toBe(false);
      expect(() => weight.rowBlock(91, 7)).toThrow(/rows 91\.\.98 are outside a frozen weight of 97 rows/);
      weight.dispose();
    });

    it(`${dtype}: lookups widen exactly and refuse ids out of range`, () => {
      const { weight, exact } = weightOf(dtype, 11);
      const ids = [0, 96, 5, 5];
      const rows = tf.tidy(() => weight.gather(tf.tensor1d(ids, 'int32')).dataSync().slice());
      const expected = ids.flatMap((id) => Array.from(exact.subarray(id * COLS, (id + 1) * COLS)));
      expect(Array.from(rows)).toEqual(expected);
      expect(() => tf.tidy(() => weight.gather(tf.tensor1d([97], 'int32')))).toThrow(
        /token id 97 is not in \[0, 96\]/,
      );
      weight.dispose();
    });
  }

  it('adds a frozen bias inside the product; the input gradient ignores it', () => {
    const { weight, exact } = weightOf('BF16', 11);
    const bias = randomValues(ROWS, 12);
    const x = randomValues(13 * COLS, 13);
    const { y, dx } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [13, COLS]);
      const b = tf.tensor1d(bias);
      const grad = tf.grad((v: tf.Tensor) => tf.sum(weight.matmul(v as tf.Tensor2D, true, b)))(xt);
      return { y: weight.matmul(xt, true, b).dataSync().slice(), dx: grad.dataSync().slice() };
    });
    const ref = referenceMatMul(x, [13, COLS], exact, [ROWS, COLS], false, true).values;
    for (let i = 0; i < ref.length; i++) ref[i] += bias[i % ROWS];
    expect(maxRelativeDiff(y, ref)).toBeLessThan(2e-5);
    const refDx = referenceMatMul(
      new Float32Array(13 * ROWS).fill(1),
      [13, ROWS],
      exact,
      [ROWS, COLS],
      false,
      false,
    );
    expect(maxRelativeDiff(dx, refDx.values)).toBeLessThan(2e-5);
    weight.dispose();
  });

  it('replace rounds to the held dtype; a snapshot restores the exact values', () => {
    const { weight, exact } = weightOf('BF16', 13);
    const snap = weight.snapshot();
    const bumped = tf.tensor2d(
      exact.map((v) => v + 1 / 3),
      [ROWS, COLS],
    );
    weight.replace(bumped);
    const held = weight.float32();
    expect(Array.from(held)).toEqual(Array.from(bf16ToF32(f32ToBf16(bumped.dataSync() as Float32Array))));
    weight.restore(snap);
    expect(Array.from(weight.float32())).toEqual(Array.from(exact));
    bumped.dispose();
    weight.dispose();
  });

  it('refuses an input that does not fit the weight', () => {
    const { weight } = weightOf('F16', 17);
    expect(() => tf.tidy(() => weight.matmul(tf.zeros([2, COLS + 1]) as tf.Tensor2D, true))).toThrow(
      /input \[2,62\] does not fit weight \[97,61\]/,
    );
    weight.dispose();
  });
});
