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
});
