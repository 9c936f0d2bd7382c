import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { matmul, matrix, maxAbsDiff, transpose } from '../../linalg/index.ts';
import { inferenceContext, trainingContext } from '../../models/layers.ts';
import { parseMethodConfig } from '../registry.ts';
import { attached, dense, fitLosses, moments } from '../shared/testing.ts';
import { baseOutput, randomInput, randomizeVariables } from '../testing.ts';
import type { TargetModule } from '../types.ts';
import { type TloraLayer, tlora } from './index.ts';

beforeAll(async () => {
  await useTestBackend();
});

const roberta = (n: number): TargetModule[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `roberta.encoder.layer.${i >> 1}.attention.self.${i % 2 ? 'value' : 'query'}`,
    kind: 'Linear',
    inFeatures: 1024,
    outFeatures: 1024,
  }));

describe('tlora', () => {
  it('counts r² + 1 per module: the paper’s 3,120 / 12,336 / 49,200 on RoBERTa-large query,value', () => {
    for (const [r, total] of [
      [8, 3120],
      [16, 12336],
      [32, 49200],
    ]) {
      const count = tlora.count(roberta(48), parseMethodConfig('tlora', { r }) as never);
      expect(count.trainable).toBe(total);
      expect(count.perModule[0].trainable).toBe(r * r + 1);
      expect(count.frozen).toBe(48 * (1024 * r + r * 1024));
    }
  });

  it('defaults: r 32, dropout 0.5; rejects bad values with clear messages', () => {
    const config = parseMethodConfig('tlora', {});
    expect(config).toMatchObject({ r: 32, dropout: 0.5 });
    expect(() => parseMethodConfig('tlora', { r: 0 })).toThrow(/r: r must be at least 1/);
    expect(() => parseMethodConfig('tlora', { dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => parseMethodConfig('tlora', { rank: 4 })).toThrow(/rank/);
  });

  it('initialises A ~ N(0, 1/(3r)), C ~ N(0, 1/(3·out)), B = 0, α = 1, with optimizer groups', () => {
    const r = 32;
    const { layer, instance, dispose } = attached(tlora, { r }, 'Linear', 256, 384);
    const l = layer.adapters.get('test') as TloraLayer;
    const a = moments(l.randomA);
    const c = moments(l.randomC);
    expect(Math.abs(a.mean)).toBeLessThan(0.01);
    expect(a.std / (1 / Math.sqrt(3 * r))).toBeCloseTo(1, 1);
    expect(c.std / (1 / Math.sqrt(3 * 384))).toBeCloseTo(1, 1);
    expect(l.randomA.shape).toEqual([256, r]);
    expect(l.randomC.shape).toEqual([r, 384]);
    expect(Array.from(l.loraB.dataSync()).every((x) => x === 0)).toBe(true);
    expect(Array.from(l.scaling.dataSync())).toEqual([1]);
    expect(instance.trainable().map((t) => [t.name, t.group])).toEqual([
      ['model.layers.0.linear.lora_B', 'adapter'],
      ['model.layers.0.linear.lora_scaling', 'scaling'],
    ]);
    dispose();
  });

  it('draws A and C from (projectionSeed, module index), records the seed, and loads states without them', () => {
    const first = attached(tlora, { r: 4 }, 'Linear', 8, 6, 99);
    const second = attached(tlora, { r: 4, projectionSeed: 99 }, 'Linear', 8, 6, 5);
    expect(first.instance.config.projectionSeed).toBe(99);
    const a1 = (first.layer.adapters.get('test') as TloraLayer).randomA;
    const a2 = (second.layer.adapters.get('test') as TloraLayer).randomA;
    expect(Array.from(a1.dataSync())).toEqual(Array.from(a2.dataSync()));

    randomizeVariables(first.instance.trainable().map((t) => t.variable));
    const state = first.instance.state();
    const trainableOnly = Object.fromEntries(
      Object.entries(state).filter(([k]) => k.endsWith('lora_B') || k.endsWith('lora_scaling')),
    );
    second.instance.loadState(trainableOnly);
    const x = randomInput(first.layer, 3);
    const y1 = first.layer.forward(x as tf.Tensor2D, inferenceContext());
    const y2 = second.layer.forward(x as tf.Tensor2D, inferenceContext());
    expect(
      maxAbsDiff(
        dense(tf.sub(y1, baseOutput(first.layer, x))),
        dense(tf.sub(y2, baseOutput(second.layer, x))),
      ),
    ).toBeLessThan(1e-6);
    const withoutB = { ...state };
    delete withoutB['model.layers.0.linear.lora_B'];
    expect(() => second.instance.loadState(withoutB)).toThrow(/missing "model.layers.0.linear.lora_B"/);
    tf.dispose([...Object.values(state), x, y1, y2]);
    first.dispose();
    second.dispose();
  });

  it('ΔW = α·(A·B·C)ᵀ and LoRA factors lora_B = α·Cᵀ·Bᵀ, lora_A = Aᵀ (float64 reference)', () => {
    const { layer, instance, dispose } = attached(tlora, { r: 3 }, 'Conv1D', 5, 7);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const l = layer.adapters.get('test') as TloraLayer;
    const alpha = l.scaling.dataSync()[0];
    const abc = matmul(matmul(dense(l.randomA), dense(l.loraB)), dense(l.randomC));
    const expected = transpose(abc);
    expected.data.forEach((v, i) => {
      expected.data[i] = v * alpha;
    });
    expect(maxAbsDiff(dense(l.deltaWeight()), expected)).toBeLessThan(1e-5);
    const { left, right } = l.lowRankFactors();
    const leftRef = transpose(matmul(dense(l.loraB), dense(l.randomC)));
    leftRef.data.forEach((v, i) => {
      leftRef.data[i] = v * alpha;
    });
    expect(maxAbsDiff(dense(left), leftRef)).toBeLessThan(1e-6);
    expect(maxAbsDiff(dense(right), transpose(dense(l.randomA)))).toBe(0);
    dispose();
  });

  it('applies dropout to the scaled adapter output, not to the input', () => {
    const { layer, instance, dispose } = attached(tlora, { r: 3, dropout: 0.5 }, 'Linear', 6, 5);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 4) as tf.Tensor2D;
    const l = layer.adapters.get('test') as TloraLayer;
    const base = baseOutput(layer, x);
    const got = tf.sub(layer.forward(x, trainingContext(3, 0)), base);
    const full = tf.matMul(x, l.deltaWeight(), false, true);
    const expected = tf.dropout(full, 0.5, undefined, trainingContext(3, 0).nextSeed());
    expect(maxAbsDiff(dense(got), dense(expected))).toBeLessThan(1e-5);
    // Every adapter entry is either dropped or doubled, which input dropout would not give.
    const ratio = Array.from(tf.div(got, full).dataSync());
    expect(ratio.every((v) => Math.abs(v) < 1e-4 || Math.abs(v - 2) < 1e-3)).toBe(true);
    dispose();
  });

  it('a few Adam steps reduce the loss', () => {
    const { first, last } = fitLosses(tlora, { r: 4, dropout: 0 }, 'Linear');
    expect(last).toBeLessThan(0.9 * first);
  });

  it('float64 reference of the forward on a batch', () => {
    const { layer, instance, dispose } = attached(tlora, { r: 2 }, 'Linear', 4, 3);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 5) as tf.Tensor2D;
    const l = layer.adapters.get('test') as TloraLayer;
    const alpha = l.scaling.dataSync()[0];
    const xa = matmul(matmul(matmul(dense(x), dense(l.randomA)), dense(l.loraB)), dense(l.randomC));
    const ref = matrix(
      xa.rows,
      xa.cols,
      xa.data.map((v) => v * alpha),
    );
    const got = dense(tf.sub(layer.forward(x, inferenceContext()), baseOutput(layer, x)));
    expect(maxAbsDiff(got, ref)).toBeLessThan(1e-5);
    dispose();
  });
});
