import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compareWithCpu,
  maxRelativeDiff,
  maxScaledDiff,
  onCpu,
  randomValues,
  referenceMatMul,
  roundToHalf,
} from '../parity.ts';
import type { GpuRuntime } from './runtime.ts';
import { F16_TOLERANCE, F32_TOLERANCE, f16Testable, gpuProbe, useGpu } from './testing.ts';

type Case = [label: string, aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean];

const cases: Case[] = [
  ['2-D, edges in every dimension', [67, 45], [45, 131], false, false],
  ['2-D A·Bᵀ, large tiles', [130, 70], [257, 70], false, true],
  ['2-D Aᵀ·B', [45, 67], [45, 33], true, false],
  ['2-D Aᵀ·Bᵀ', [20, 33], [17, 20], true, true],
  ['batched, A·Bᵀ', [3, 12, 16], [3, 9, 16], false, true],
  ['rank 4 batched Aᵀ·B', [2, 2, 16, 12], [2, 2, 16, 9], true, false],
];

/** Broadcast batches: tfjs-core's BatchMatMul gradient cannot reduce them, so only the product is compared. */
const broadcast: Case[] = [
  ['batch against one matrix (folded)', [3, 40, 24], [24, 18], false, false],
  ['one matrix against a batch', [40, 24], [3, 40, 18], true, false],
  ['batch against one transposed matrix', [2, 33, 24], [18, 24], false, true],
];

describe.skipIf(!gpuProbe.available)(`webgpu GEMM (${gpuProbe.reason})`, () => {
  let rt: GpuRuntime;
  beforeAll(async () => {
    rt = await useGpu();
  });

  it.each(cases)('%s: product and both gradients match cpu', async (_label, aShape, bShape, tA, tB) => {
    const a = randomValues(tf.util.sizeFromShape(aShape), 1);
    const b = randomValues(tf.util.sizeFromShape(bShape), 2);
    const diffs = await compareWithCpu(() => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, w, tA, tB)));
      const ta = tf.tensor(a, aShape);
      const tb = tf.tensor(b, bShape);
      return [tf.matMul(ta, tb, tA, tB), ...tf.grads(f)([ta, tb])];
    });
    for (const d of diffs) expect(d).toBeLessThan(F32_TOLERANCE);
  });

  it.each(broadcast)('%s: product matches a float64 reference', async (_label, aShape, bShape, tA, tB) => {
    const a = randomValues(tf.util.sizeFromShape(aShape), 1);
    const b = randomValues(tf.util.sizeFromShape(bShape), 2);
    const y = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB);
    const expected = referenceMatMul(a, aShape, b, bShape, tA, tB);
    expect(y.shape).toEqual(expected.shape);
    expect(maxRelativeDiff(await y.data(), expected.values)).toBeLessThan(F32_TOLERANCE);
    y.dispose();
  });

  it.each([
    'relu',
    'leakyrelu',
    'sigmoid',
    'elu',
    'relu6',
  ] as const)('fused bias + %s matches cpu', async (activation) => {
    const a = randomValues(9 * 12, 3);
    const b = randomValues(70 * 12, 4);
    const bias = randomValues(70, 5);
    const [d] = await compareWithCpu(() =>
      tf.fused.matMul({
        a: tf.tensor2d(a, [9, 12]),
        b: tf.tensor2d(b, [70, 12]),
        transposeB: true,
        bias: tf.tensor1d(bias),
        activation,
        leakyreluAlpha: 0.1,
      }),
    );
    expect(d).toBeLessThan(F32_TOLERANCE);
  });

  it('adds many gradients at once, past the storage-buffer limit of one shader', async () => {
    const parts = Array.from({ length: 21 }, (_, i) => randomValues(50, 10 + i));
    const [d] = await compareWithCpu(() => tf.addN(parts.map((p) => tf.tensor1d(p))));
    expect(d).toBeLessThan(F32_TOLERANCE);
  });

  describe('frozen weights', () => {
    const x = randomValues(37 * 48, 6);
    const w = randomValues(200 * 48, 7);
    const dy = randomValues(37 * 200, 8);

    /**
     * x·Wᵀ and dy·W (forward and input gradient of a Linear) with W frozen on the GPU as `dtype`, against the cpu
     * backend's products with `reference` as W: relative errors, and errors scaled by the largest output.
     */
    async function frozenProducts(dtype: 'f32' | 'f16', maxChunkBytes?: number, reference = w) {
      const expected = await onCpu(() =>
        tf.tidy(() => {
          const wt = tf.tensor2d(reference, [200, 48]);
          return [
            tf.matMul(tf.tensor2d(x, [37, 48]), wt, false, true).dataSync(),
            tf.matMul(tf.tensor2d(dy, [37, 200]), wt).dataSync(),
          ];
        }),
      );
      const saved = rt.maxBindingBytes;
      if (maxChunkBytes) rt.maxBindingBytes = maxChunkBytes;
      const weight = tf.tensor2d(w, [200, 48]);
      const frozen = rt.freeze(weight, dtype);
      rt.maxBindingBytes = saved;
      const forward = tf.matMul(tf.tensor2d(x, [37, 48]), weight, false, true);
      const back = tf.matMul(tf.tensor2d(dy, [37, 200]), weight);
      const actual = [await forward.data(), await back.data()];
      // tfjs never uploaded its own f32 copy: the products read ours
      const onGpu = (rt.backend.tensorMap.get(weight.dataId).resource ?? null) !== null;
      tf.dispose([forward, back, weight]);
      return {
        diffs: actual.map((v, i) => maxRelativeDiff(v, expected[i])),
        scaled: actual.map((v, i) => maxScaledDiff(v, expected[i])),
        chunks: frozen.chunks.length,
        onGpu,
      };
    }

    it('f32 copies give the same products and tfjs keeps no copy of its own', async () => {
      const r = await frozenProducts('f32');
      expect(r.chunks).toBe(1);
      expect(r.onGpu).toBe(false);
      for (const d of r.diffs) expect(d).toBeLessThan(F32_TOLERANCE);
    });

    it('a weight larger than a binding is split by rows, in both product orientations', async () => {
      const r = await frozenProducts('f32', 64 * 48 * 4);
      expect(r.chunks).toBe(4);
      for (const d of r.diffs) expect(d).toBeLessThan(F32_TOLERANCE);
    });

    it('f16 copies: exact products of the rounded weights, within the f16 tolerance of the f32 ones', async () => {
      if (!f16Testable(rt, 'f16 weights')) return;
      const rounded = await frozenProducts('f16', 64 * 48 * 4, roundToHalf(w));
      for (const d of rounded.diffs) expect(d).toBeLessThan(F32_TOLERANCE);
      const r = await frozenProducts('f16', 64 * 48 * 4);
      for (const d of r.scaled) expect(d).toBeLessThan(F16_TOLERANCE);
      // f16 storage is lossy at all: the checks above could not pass on an f32 copy by accident
      for (const d of r.scaled) expect(d).toBeGreaterThan(1e-6);
    });

    it('the copy is freed with its tensor', async () => {
      const weight = tf.tensor2d(w, [200, 48]);
      rt.freeze(weight, 'f32');
      expect(rt.frozen.has(weight.dataId)).toBe(true);
      weight.dispose();
      expect(rt.frozen.has(weight.dataId)).toBe(false);
    });
  });
});
