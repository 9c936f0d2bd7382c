import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { fromRows, matmul, matrix, maxAbsDiff } from '../../linalg/index.ts';
import { inferenceContext, trainingContext } from '../../models/layers.ts';
import { parseMethodConfig } from '../registry.ts';
import { attached, dense, fitLosses } from '../shared/testing.ts';
import { baseOutput, randomAdaptableLayer, randomInput, randomizeVariables } from '../testing.ts';
import type { PeftContext, TargetModule } from '../types.ts';
import { type VeraConfig, type VeraLayer, vera, veraProjections } from './index.ts';

const torchRef = JSON.parse(
  readFileSync(new URL('../shared/fixtures/torch-random.json', import.meta.url), 'utf8'),
) as {
  vera: { key: number; r: number; inMax: number; outMax: number; A: number[][]; B: number[][] };
};

beforeAll(async () => {
  await useTestBackend();
});

const parse = (raw: Record<string, unknown>) => parseMethodConfig('vera', raw) as VeraConfig;

const llamaQV: TargetModule[] = Array.from({ length: 56 }, (_, i) => ({
  name: `model.layers.${i >> 1}.self_attn.${i % 2 ? 'v_proj' : 'q_proj'}`,
  kind: 'Linear',
  inFeatures: 3072,
  outFeatures: i % 2 ? 1024 : 3072,
}));

describe('vera', () => {
  it('counts λ_b + λ_d per module: 129,024 on Llama-3.2-3B q,v with r 256; shared A/B frozen once', () => {
    const count = vera.count(llamaQV, parse({}));
    expect(count.trainable).toBe(129024);
    expect(count.shared).toEqual([
      { name: 'vera_A', shape: [256, 3072], trainable: false, modules: llamaQV.map((t) => t.name) },
      { name: 'vera_B', shape: [3072, 256], trainable: false, modules: llamaQV.map((t) => t.name) },
    ]);
    expect(count.frozen).toBe(2 * 256 * 3072);
  });

  it('PEFT defaults and validation messages', () => {
    expect(parse({})).toMatchObject({
      r: 256,
      projectionPrngKey: 0,
      saveProjection: true,
      dropout: 0,
      dInitial: 0.1,
      initWeights: true,
    });
    expect(() => parse({ r: 2.5 })).toThrow(/r must be a whole number/);
    expect(() => parse({ projectionPrngKey: -1 })).toThrow(/projectionPrngKey must be ≥ 0/);
  });

  it('draws vera_A then vera_B from torch.Generator().manual_seed(key) with PEFT’s kaiming bounds', () => {
    const ref = torchRef.vera;
    const { a, b } = veraProjections(ref.key, ref.r, ref.inMax, ref.outMax);
    expect(maxAbsDiff(dense(a), fromRows(ref.A))).toBe(0);
    expect(maxAbsDiff(dense(b), fromRows(ref.B))).toBe(0);
    tf.dispose([a, b]);
  });

  it('shares A/B sized by the largest in/out, slices them per module, inits λ_d = dInitial and λ_b = 0', () => {
    const layers = [
      randomAdaptableLayer('Linear', 10, 4, { name: 'm.0.q', seed: 1 }),
      randomAdaptableLayer('Linear', 7, 6, { name: 'm.0.v', seed: 2 }),
    ];
    const instance = vera.create(layers, parse({ r: 4 }), { adapterName: 'a', seed: 0 });
    const [q, v] = layers.map((l) => l.adapters.get('a') as VeraLayer);
    expect(q.veraA).toBe(v.veraA);
    expect(q.veraA.shape).toEqual([4, 10]);
    expect(q.veraB.shape).toEqual([6, 4]);
    expect(Array.from(q.lambdaD.dataSync())).toEqual([0.1, 0.1, 0.1, 0.1].map(Math.fround));
    expect(Array.from(v.lambdaB.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Object.keys(instance.state())).toEqual([
      'm.0.q.vera_lambda_b',
      'm.0.q.vera_lambda_d',
      'm.0.v.vera_lambda_b',
      'm.0.v.vera_lambda_d',
      'vera_A',
      'vera_B',
    ]);
    // ΔW of the second module = diag(λ_b)·B[:6]·diag(λ_d)·A[:, :7] (float64 reference).
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const a = dense(v.veraA);
    const b = dense(v.veraB);
    const ld = v.lambdaD.dataSync();
    const lb = v.lambdaB.dataSync();
    const left = matrix(6, 4);
    const right = matrix(4, 7);
    for (let i = 0; i < 6; i++)
      for (let k = 0; k < 4; k++) left.data[i * 4 + k] = lb[i] * b.data[i * 4 + k] * ld[k];
    for (let k = 0; k < 4; k++) for (let j = 0; j < 7; j++) right.data[k * 7 + j] = a.data[k * 10 + j];
    expect(maxAbsDiff(dense(v.deltaWeight()), matmul(left, right))).toBeLessThan(1e-6);
    instance.dispose();
    for (const l of layers) l.weight.dispose();
  });

  it('applies dropout to the input', () => {
    const { layer, instance, dispose } = attached(vera, { r: 4, dropout: 0.5 }, 'Linear', 6, 5);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 4) as tf.Tensor2D;
    const l = layer.adapters.get('test') as VeraLayer;
    const got = tf.sub(layer.forward(x, trainingContext(3, 0)), baseOutput(layer, x));
    const xd = tf.dropout(x, 0.5, undefined, trainingContext(3, 0).nextSeed());
    expect(maxAbsDiff(dense(got), dense(tf.matMul(xd, l.deltaWeight(), false, true)))).toBeLessThan(1e-5);
    dispose();
  });

  it('PEFT export: key names and config; without projections it reloads from projection_prng_key', () => {
    const layers = [0, 1].map((i) =>
      randomAdaptableLayer('Linear', 6, 5, { name: `model.layers.${i}.v_proj`, seed: i + 1 }),
    );
    const config = parse({ r: 4, projectionPrngKey: 3, saveProjection: false });
    const instance = vera.create(layers, config, { adapterName: 'a', seed: 0 });
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const ctx: PeftContext = {
      baseModelNameOrPath: 'tiny',
      taskType: null,
      targets: layers.map((l) => ({ name: l.name, kind: l.kind, inFeatures: 6, outFeatures: 5 })),
    };
    const { adapterConfig, tensors } = vera.peft!.toPeft(instance, ctx);
    expect(Object.keys(tensors).sort()).toEqual([
      'base_model.model.model.layers.0.v_proj.vera_lambda_b',
      'base_model.model.model.layers.0.v_proj.vera_lambda_d',
      'base_model.model.model.layers.1.v_proj.vera_lambda_b',
      'base_model.model.model.layers.1.v_proj.vera_lambda_d',
    ]);
    expect(adapterConfig).toMatchObject({
      peft_type: 'VERA',
      r: 4,
      projection_prng_key: 3,
      save_projection: false,
      vera_dropout: 0,
      d_initial: 0.1,
      init_weights: true,
      bias: 'none',
      fan_in_fan_out: false,
      target_modules: ['v_proj'],
    });
    const x = randomInput(layers[1], 3) as tf.Tensor2D;
    const before = dense(layers[1].forward(x, inferenceContext()));
    instance.dispose();
    for (const l of layers) l.adapters.delete('a');

    const loaded = vera.peft!.fromPeft(adapterConfig, tensors);
    const again = vera.create(layers, loaded.config, { adapterName: 'a', seed: 5 });
    again.loadState(loaded.state);
    expect(maxAbsDiff(dense(layers[1].forward(x, inferenceContext())), before)).toBeLessThan(1e-6);
    const withProjection = vera.peft!.toPeft(again, ctx).tensors;
    expect(Object.keys(withProjection)).not.toContain('base_model.vera_A');
    again.dispose();
    for (const l of layers) l.adapters.delete('a');

    const saved = vera.create(layers, parse({ r: 4 }), { adapterName: 'a', seed: 0 });
    const full = vera.peft!.toPeft(saved, ctx).tensors;
    expect(full['base_model.vera_A'].shape).toEqual([4, 6]);
    expect(full['base_model.vera_B'].shape).toEqual([5, 4]);
    expect(Object.keys(vera.peft!.fromPeft({ peft_type: 'VERA', r: 4 }, full).state)).toContain('vera_A');
    expect(() => vera.peft!.fromPeft({ peft_type: 'LORA' }, {})).toThrow(/expected "VERA"/);
    saved.dispose();
    tf.dispose([...Object.values(tensors), ...Object.values(withProjection), ...Object.values(full), x]);
    for (const l of layers) l.weight.dispose();
  });

  it('a few Adam steps reduce the loss', () => {
    const { first, last } = fitLosses(vera, { r: 8 }, 'Linear');
    expect(last).toBeLessThan(0.9 * first);
  });
});
