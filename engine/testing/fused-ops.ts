import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { fusedOps } from '../backends/fused.ts';
import { compareWithCpu, maxRelativeDiff, onCpu, randomValues } from '../backends/parity.ts';
import {
  activation,
  attend,
  attentionBias,
  gatedActivation,
  layerNorm,
  rmsNorm,
  weightedTokenNll,
} from '../models/ops.ts';
import { applyRope, ropeTables } from '../models/rope.ts';
import { AdamW } from '../training/optimizer.ts';

/**
 * The parity cases every backend with fused ops (../backends/fused-kernels.ts) passes: each fused op, through the
 * model code that calls it, against the composed ops on the `cpu` backend, values and gradients. Call inside a
 * describe block whose backend is active.
 */

const t2 = (shape: [number, number], seed: number, scale = 1) =>
  tf.mul(tf.tensor2d(randomValues(shape[0] * shape[1], seed), shape), scale) as tf.Tensor2D;
const t1 = (n: number, seed: number) => tf.tensor1d(randomValues(n, seed));

/** A random projection of y to a scalar, so every output element gets its own gradient. */
function project(y: tf.Tensor, seed: number): tf.Scalar {
  return tf.sum(tf.mul(y, tf.tensor(randomValues(y.size, seed), y.shape)));
}

/** Registers the cases; results must match to `tolerance` (relative, see `maxRelativeDiff`). */
export function fusedOpsParity(tolerance: number): void {
  it('the backend provides fused ops; cpu does not', async () => {
    expect(fusedOps()).not.toBeNull();
    expect(await onCpu(() => fusedOps())).toBeNull();
  });

  it.each([
    [37, 200],
    [5, 1000],
    [300, 24],
  ])('RMSNorm and LayerNorm [%i, %i]: values and gradients of x, weight and bias', async (n, d) => {
    const diffs = await compareWithCpu(() => {
      const x = t2([n, d], 1, 3);
      const w = t1(d, 2);
      const b = t1(d, 3);
      const rms = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
        project(rmsNorm(xi as tf.Tensor2D, wi as tf.Tensor1D, 1e-6), 4),
      );
      const ln = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        project(layerNorm(xi as tf.Tensor2D, wi as tf.Tensor1D, bi as tf.Tensor1D, 1e-5), 5),
      );
      return [rmsNorm(x, w, 1e-6), layerNorm(x, w, b, 1e-5), ...rms([x, w]), ...ln([x, w, b])];
    });
    for (const d of diffs) expect(d).toBeLessThan(tolerance);
  });

  it('RoPE (llama3 scaling): values and the input gradient', async () => {
    const diffs = await compareWithCpu(() => {
      const [b, h, t, d] = [2, 3, 11, 16];
      const x = tf.tensor4d(randomValues(b * h * t * d, 6), [b, h, t, d]);
      const positions = tf.tensor2d(
        Array.from({ length: b * t }, (_, i) => (i % t) + 3 * Math.floor(i / t)),
        [b, t],
        'int32',
      );
      const tables = ropeTables(
        positions,
        {
          type: 'llama3',
          theta: 500000,
          dim: d,
          headDim: d,
          factor: 32,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalMaxPositions: 8192,
        },
        t,
      );
      const g = tf.grad((xi: tf.Tensor) => project(applyRope(xi as tf.Tensor4D, tables), 7));
      return [applyRope(x, tables), g(x)];
    });
    for (const d of diffs) expect(d).toBeLessThan(tolerance);
  });

  it.each([
    'silu',
    'gelu',
    'gelu_new',
    'gelu_pytorch_tanh',
  ])('%s and its gated form: values and gradients, large inputs included', async (name) => {
    const diffs = await compareWithCpu(() => {
      const wide = tf.tensor2d([Array.from({ length: 30 }, (_, i) => (i - 15) * 4)]);
      const x = tf.concat([t2([20, 30], 8, 4), wide]) as tf.Tensor2D;
      const up = t2([21, 30], 9);
      const f = activation(name);
      const gx = tf.grad((xi: tf.Tensor) => project(f(xi), 10));
      const gg = tf.grads((gi: tf.Tensor, ui: tf.Tensor) => project(gatedActivation(name, gi, ui), 11));
      return [f(x), gx(x), gatedActivation(name, x, up), ...gg([x, up])];
    });
    for (const d of diffs) expect(d).toBeLessThan(tolerance);
  });

  it('token NLL over a vocabulary: sum and logits gradient, zero-weight rows included', async () => {
    const diffs = await compareWithCpu(() => {
      const logits = t2([13, 1301], 12, 8);
      const targets = tf.tensor1d(
        Array.from({ length: 13 }, (_, i) => (i * 397) % 1301),
        'int32',
      );
      const weights = tf.tensor1d(Array.from({ length: 13 }, (_, i) => (i % 4 === 3 ? 0 : 1 + i / 10)));
      const g = tf.grad((l: tf.Tensor) => weightedTokenNll(l as tf.Tensor2D, targets, weights));
      return [weightedTokenNll(logits, targets, weights), g(logits)];
    });
    for (const d of diffs) expect(d).toBeLessThan(tolerance);
  });

  type AttentionCase = [
    label: string,
    shape: { b: number; h: number; hkv: number; tq: number; tk: number; d: number },
    mask: { causal: boolean; lengths: number[]; window?: number },
  ];
  const attentionCases: AttentionCase[] = [
    ['causal MHA, d 32', { b: 2, h: 4, hkv: 4, tq: 37, tk: 37, d: 32 }, { causal: true, lengths: [37, 37] }],
    [
      'causal GQA 8/2, right padding, d 64',
      { b: 2, h: 8, hkv: 2, tq: 45, tk: 45, d: 64 },
      { causal: true, lengths: [45, 30] },
    ],
    [
      'encoder with key padding, d 16',
      { b: 3, h: 2, hkv: 2, tq: 19, tk: 19, d: 16 },
      { causal: false, lengths: [19, 7, 12] },
    ],
    [
      'decoding 3 new tokens over 20, GQA',
      { b: 2, h: 4, hkv: 1, tq: 3, tk: 20, d: 32 },
      { causal: true, lengths: [20, 20] },
    ],
    [
      'sliding window 8, d 128',
      { b: 1, h: 2, hkv: 1, tq: 33, tk: 33, d: 128 },
      { causal: true, lengths: [33], window: 8 },
    ],
  ];

  it.each(attentionCases)('attention, %s: output and q, k, v gradients', async (_label, s, mask) => {
    const make = () => {
      const q = tf.tensor4d(randomValues(s.b * s.h * s.tq * s.d, 13), [s.b, s.h, s.tq, s.d]);
      const k = tf.tensor4d(randomValues(s.b * s.hkv * s.tk * s.d, 14), [s.b, s.hkv, s.tk, s.d]);
      const v = tf.tensor4d(randomValues(s.b * s.hkv * s.tk * s.d, 15), [s.b, s.hkv, s.tk, s.d]);
      const keyMask = tf.tensor2d(
        mask.lengths.flatMap((n) => Array.from({ length: s.tk }, (_, i) => (i < n ? 1 : 0))),
        [s.b, s.tk],
        'int32',
      );
      const bias = attentionBias(keyMask, {
        causal: mask.causal,
        queryLength: s.tq,
        slidingWindow: mask.window,
      });
      return { q, k, v, bias };
    };
    // the fused kernel must take these shapes, or the comparison below would test the composed ops twice
    tf.tidy(() => {
      const { q, k, v, bias } = make();
      expect(fusedOps()!.attention(q, k, v, bias, 1 / Math.sqrt(q.shape[3]))).not.toBeNull();
    });
    const diffs = await compareWithCpu(() => {
      const { q, k, v, bias } = make();
      const g = tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) =>
        project(attend(qi as tf.Tensor4D, ki as tf.Tensor4D, vi as tf.Tensor4D, bias), 16),
      );
      return [attend(q, k, v, bias), ...g([q, k, v])];
    });
    for (const d of diffs) expect(d).toBeLessThan(tolerance);
  });

  it('AdamW, with and without weight decay: three steps of parameters and moments', async () => {
    const steps = async () => {
      const p = tf.variable(t2([40, 7], 17), true, 'p-adamw');
      const q = tf.variable(t1(33, 18), true, 'q-adamw');
      const opt = new AdamW(
        [
          { name: 'p', variable: p, group: 'adapter' },
          { name: 'q', variable: q, group: 'scaling' },
        ],
        {
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          groups: { adapter: { lr: 1e-2, weightDecay: 0.1 }, scaling: { lr: 3e-3, weightDecay: 0 } },
        },
      );
      for (let i = 0; i < 3; i++) {
        const grads = { p: t2([40, 7], 19 + i), q: t1(33, 29 + i) };
        opt.step(grads, 1 - i / 10);
        tf.dispose(Object.values(grads));
      }
      const state = opt.state();
      const out = await Promise.all([p, q, ...Object.values(state.tensors)].map((t) => t.data()));
      opt.dispose();
      p.dispose();
      q.dispose();
      return out;
    };
    const expected = await onCpu(steps);
    const actual = await steps();
    for (let i = 0; i < actual.length; i++)
      expect(maxRelativeDiff(actual[i], expected[i])).toBeLessThan(tolerance);
  });
}
