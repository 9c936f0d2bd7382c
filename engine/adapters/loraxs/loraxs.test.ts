import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { identity, matmul, matrix, maxAbsDiff, svd, transpose } from '../../linalg/index.ts';
import { trainingContext } from '../../models/layers.ts';
import { parseMethodConfig } from '../registry.ts';
import { attached, dense, fitLosses, moments } from '../shared/testing.ts';
import { baseOutput, randomInput, randomizeVariables } from '../testing.ts';
import type { TargetModule } from '../types.ts';
import { type LoraxsConfig, type LoraxsLayer, loraxs } from './index.ts';

beforeAll(async () => {
  await useTestBackend();
});

const parse = (raw: Record<string, unknown>) => parseMethodConfig('loraxs', raw) as LoraxsConfig;

describe('loraxs', () => {
  it('counts r² per module (r 32 on RoBERTa-large query,value: 49,152)', () => {
    const targets: TargetModule[] = Array.from({ length: 48 }, (_, i) => ({
      name: `roberta.encoder.layer.${i >> 1}.attention.self.${i % 2 ? 'value' : 'query'}`,
      kind: 'Linear',
      inFeatures: 1024,
      outFeatures: 1024,
    }));
    const count = loraxs.count(targets, parse({}));
    expect(count.trainable).toBe(49152);
    expect(count.frozen).toBe(48 * 32 * 2048);
    expect(() => loraxs.count([{ ...targets[0], outFeatures: 16 }], parse({}))).toThrow(
      /r = 32 exceeds min\(in, out\) = 16 at roberta.encoder.layer.0.attention.self.query/,
    );
  });

  it('defaults r 32, alpha 64, R ~ N(0, 1e-5); frozen A = S·Vᵀ (singular values on the A side), B = U', () => {
    expect(parse({})).toMatchObject({ r: 32, alpha: 64, dropout: 0, initStd: 1e-5 });
    const { layer, instance, dispose } = attached(loraxs, {}, 'Linear', 48, 40);
    const l = layer.adapters.get('test') as LoraxsLayer;
    expect(moments(l.core).std / 1e-5).toBeCloseTo(1, 1);
    expect(instance.trainable().map((t) => t.name)).toEqual([
      'model.layers.0.linear.lora_latent_mapping.weight',
    ]);
    const w = dense(layer.logicalWeight());
    const s = svd(w).s;
    const a = dense(l.a);
    const b = dense(l.b);
    // B has orthonormal columns, A = Bᵀ·W, and A·Aᵀ = diag(S²) for the top 32 singular values.
    expect(maxAbsDiff(matmul(transpose(b), b), identity(32))).toBeLessThan(1e-5);
    expect(maxAbsDiff(a, matmul(transpose(b), w))).toBeLessThan(1e-4);
    const s2 = matrix(32, 32);
    for (let i = 0; i < 32; i++) s2.data[i * 33] = s[i] * s[i];
    expect(maxAbsDiff(matmul(a, transpose(a)), s2)).toBeLessThan(1e-3 * s[0] * s[0]);
    dispose();
  });

  it('ΔW = (alpha/r)·B·R·A; LoRA factors lora_B = s·B, lora_A = R·A (float64 reference)', () => {
    const { layer, instance, dispose } = attached(loraxs, { r: 3, alpha: 5 }, 'Conv1D', 6, 7);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const l = layer.adapters.get('test') as LoraxsLayer;
    const bra = matmul(matmul(dense(l.b), dense(l.core)), dense(l.a));
    const expected = matrix(
      bra.rows,
      bra.cols,
      bra.data.map((v) => (v * 5) / 3),
    );
    expect(maxAbsDiff(dense(l.deltaWeight()), expected)).toBeLessThan(1e-5);
    const { left, right } = l.lowRankFactors();
    expect(maxAbsDiff(dense(right), matmul(dense(l.core), dense(l.a)))).toBeLessThan(1e-5);
    const b = dense(l.b);
    expect(
      maxAbsDiff(
        dense(left),
        matrix(
          b.rows,
          b.cols,
          b.data.map((v) => (v * 5) / 3),
        ),
      ),
    ).toBeLessThan(1e-6);
    dispose();
  });

  it('applies dropout to the input', () => {
    const { layer, instance, dispose } = attached(loraxs, { r: 3, dropout: 0.5 }, 'Linear', 6, 5);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 4) as tf.Tensor2D;
    const l = layer.adapters.get('test') as LoraxsLayer;
    const got = tf.sub(layer.forward(x, trainingContext(3, 0)), baseOutput(layer, x));
    const xd = tf.dropout(x, 0.5, undefined, trainingContext(3, 0).nextSeed());
    expect(maxAbsDiff(dense(got), dense(tf.matMul(xd, l.deltaWeight(), false, true)))).toBeLessThan(1e-5);
    dispose();
  });

  it('a few Adam steps reduce the loss', () => {
    const { first, last } = fitLosses(loraxs, { r: 4, alpha: 8 }, 'Linear');
    expect(last).toBeLessThan(0.9 * first);
  });
});
