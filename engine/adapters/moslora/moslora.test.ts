import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { matmul, matrix, maxAbsDiff, transpose } from '../../linalg/index.ts';
import { trainingContext } from '../../models/layers.ts';
import { parseMethodConfig } from '../registry.ts';
import { attached, dense, fitLosses } from '../shared/testing.ts';
import { baseOutput, layerOutput, randomInput, randomizeVariables } from '../testing.ts';
import type { TargetModule } from '../types.ts';
import { type MosloraConfig, type MosloraLayer, moslora } from './index.ts';

beforeAll(async () => {
  await useTestBackend();
});

const parse = (raw: Record<string, unknown>) => parseMethodConfig('moslora', raw) as MosloraConfig;
type M = ReturnType<typeof dense>;
const scaled = (m: M, s: number) =>
  matrix(
    m.rows,
    m.cols,
    Array.from(m.data, (v) => v * s),
  );
const add = (a: M, b: M) =>
  matrix(
    a.rows,
    a.cols,
    Array.from(a.data, (v, i) => v + b.data[i]),
  );

describe('moslora', () => {
  it('counts LoRA’s r·(in + out) plus the r × r mixer per module', () => {
    const targets: TargetModule[] = [
      { name: 'model.layers.0.self_attn.q_proj', kind: 'Linear', inFeatures: 64, outFeatures: 64 },
      { name: 'model.layers.0.self_attn.v_proj', kind: 'Linear', inFeatures: 64, outFeatures: 32 },
    ];
    const count = moslora.count(targets, parse({ r: 4 }));
    expect(count.trainable).toBe(4 * 128 + 16 + 4 * 96 + 16);
    expect(count.perModule[1].tensors.map((t) => [t.name, t.shape])).toEqual([
      ['lora_A.weight', [4, 64]],
      ['lora_AB.weight', [4, 4]],
      ['lora_B.weight', [32, 4]],
    ]);
  });

  it('starts as a no-op: A and M kaiming-uniform (U(±1/√fan_in)), B = 0', () => {
    const { layer, instance, dispose } = attached(moslora, { r: 4 }, 'Linear', 9, 7);
    const l = layer.adapters.get('test') as MosloraLayer;
    expect(Math.max(...Array.from(l.a.dataSync(), Math.abs))).toBeLessThanOrEqual(1 / 3);
    expect(Math.max(...Array.from(l.mixer.dataSync(), Math.abs))).toBeLessThanOrEqual(1 / 2);
    expect(Math.max(...Array.from(l.b.dataSync(), Math.abs))).toBe(0);
    expect(instance.trainable()).toHaveLength(3);
    const x = randomInput(layer, 3);
    expect(maxAbsDiff(dense(layerOutput(layer, x)), dense(baseOutput(layer, x)))).toBe(0);
    dispose();
  });

  it('forward and ΔW match the dense float64 reference y = x·Wᵀ + b + s·x·Aᵀ·Mᵀ·Bᵀ (Linear and Conv1D)', () => {
    for (const kind of ['Linear', 'Conv1D'] as const) {
      const { layer, instance, dispose } = attached(moslora, { r: 3, loraAlpha: 5 }, kind, 6, 7);
      randomizeVariables(instance.trainable().map((t) => t.variable));
      const l = layer.adapters.get('test') as MosloraLayer;
      const s = 5 / 3;
      const delta = scaled(matmul(matmul(dense(l.b), dense(l.mixer)), dense(l.a)), s);
      expect(maxAbsDiff(dense(l.deltaWeight()), delta)).toBeLessThan(1e-5);
      const { left, right } = l.lowRankFactors();
      expect(maxAbsDiff(matmul(dense(left), dense(right)), delta)).toBeLessThan(1e-5);
      const x = randomInput(layer, 4) as tf.Tensor2D;
      const w = dense(layer.logicalWeight());
      const bias = dense(layer.bias!);
      const expected = matmul(dense(x), transpose(add(w, delta)));
      for (let i = 0; i < expected.rows; i++)
        for (let j = 0; j < expected.cols; j++) expected.data[i * expected.cols + j] += bias.data[j];
      expect(maxAbsDiff(dense(layerOutput(layer, x)), expected)).toBeLessThan(1e-5);
      dispose();
    }
  });

  it('applies dropout to the input', () => {
    const { layer, instance, dispose } = attached(moslora, { r: 3, dropout: 0.5 }, 'Linear', 6, 5);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 4) as tf.Tensor2D;
    const l = layer.adapters.get('test') as MosloraLayer;
    const got = tf.sub(layer.forward(x, trainingContext(3, 0)), baseOutput(layer, x));
    const xd = tf.dropout(x, 0.5, undefined, trainingContext(3, 0).nextSeed());
    expect(maxAbsDiff(dense(got), dense(tf.matMul(xd, l.deltaWeight(), false, true)))).toBeLessThan(1e-5);
    dispose();
  });

  it('a few Adam steps reduce the loss', () => {
    const { first, last } = fitLosses(moslora, { r: 4 }, 'Linear');
    expect(last).toBeLessThan(0.9 * first);
  });
});
