import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureGradients } from './gradients.ts';
import { maxRelativeDiff, onCpu, randomValues } from './parity.ts';
import { initWasmBackend } from './wasm.ts';

beforeAll(async () => {
  await ensureGradients();
  await initWasmBackend();
});

describe('kernels added to wasm', () => {
  it('unsortedSegmentSum matches cpu, dropping out-of-range ids', async () => {
    const x = randomValues(6 * 4, 1);
    const ids = new Int32Array([2, 0, 2, 5, -1, 1]);
    const run = () =>
      tf.tidy(() =>
        tf
          .unsortedSegmentSum(tf.tensor(x, [6, 4]), tf.tensor1d(ids, 'int32'), 4)
          .dataSync()
          .slice(),
      );
    expect(maxRelativeDiff(run(), await onCpu(run))).toBeLessThan(1e-6);
  });

  it('the gradient of gather (embedding lookup) matches cpu', async () => {
    const table = randomValues(10 * 3, 2);
    const w = randomValues(5 * 3, 3);
    const run = () =>
      tf.tidy(() => {
        const f = (t: tf.Tensor) =>
          tf.sum(tf.mul(tf.gather(t, tf.tensor1d([1, 7, 1, 0, 9], 'int32')), tf.tensor(w, [5, 3])));
        return tf
          .grad(f)(tf.tensor(table, [10, 3]))
          .dataSync()
          .slice();
      });
    expect(tf.getBackend()).toBe('wasm');
    expect(maxRelativeDiff(run(), await onCpu(run))).toBeLessThan(1e-6);
  });

  it('einsum runs through the cpu kernel and matches cpu', async () => {
    const a = randomValues(2 * 3 * 4, 4);
    const b = randomValues(2 * 4 * 5, 5);
    const run = () =>
      tf.tidy(() =>
        tf
          .einsum('bij,bjk->bik', tf.tensor(a, [2, 3, 4]), tf.tensor(b, [2, 4, 5]))
          .dataSync()
          .slice(),
      );
    expect(maxRelativeDiff(run(), await onCpu(run))).toBeLessThan(1e-5);
  });

  it('slice reads any block in place and matches cpu for ranks 1–5 and every numeric dtype', async () => {
    const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
      { shape: [7], begin: [2], size: [4] },
      { shape: [5, 6], begin: [1, 2], size: [3, 3] },
      { shape: [5, 6], begin: [0, 0], size: [5, 6] },
      { shape: [4, 3, 5], begin: [1, 0, 2], size: [2, 3, -1] },
      { shape: [2, 4, 3, 5], begin: [1, 1, 0, 1], size: [1, 2, 3, 3] },
      { shape: [2, 3, 2, 3, 4], begin: [0, 1, 1, 0, 1], size: [2, 2, 1, 3, 2] },
      { shape: [3, 4], begin: [1, 2], size: [0, 2] },
    ];
    for (const { shape, begin, size } of cases) {
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const n = tf.util.sizeFromShape(shape);
        const values = randomValues(n, n + 1).map((v) => (dtype === 'float32' ? v : Math.round(v * 10)));
        const run = () =>
          tf.tidy(() => Array.from(tf.slice(tf.tensor(values, shape, dtype), begin, size).dataSync()));
        const got = run();
        expect(got).toEqual(await onCpu(run));
      }
    }
  });

  it('splitV matches cpu on every axis, including a zero-sized part', async () => {
    const x = randomValues(4 * 6 * 5, 9);
    for (const [axis, sizes] of [
      [0, [1, 3]],
      [1, [2, 0, 4]],
      [2, [3, 2]],
      [-1, [1, 1, 3]],
    ] as const) {
      const run = () =>
        tf.tidy(() =>
          tf.split(tf.tensor(x, [4, 6, 5]), [...sizes], axis).map((t) => Array.from(t.dataSync())),
        );
      expect(run()).toEqual(await onCpu(run));
    }
  });
});
