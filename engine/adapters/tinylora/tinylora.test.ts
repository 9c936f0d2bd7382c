import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { matmul, matrix, maxAbsDiff, svd, transpose } from '../../linalg/index.ts';
import { inferenceContext, trainingContext } from '../../models/layers.ts';
import { parseMethodConfig } from '../registry.ts';
import { attached, dense, fitLosses } from '../shared/testing.ts';
import { baseOutput, randomAdaptableLayer, randomInput, randomizeVariables } from '../testing.ts';
import type { PeftContext, TargetModule } from '../types.ts';
import { pythonRound, type TinyloraConfig, type TinyloraLayer, tinylora, tyingGroups } from './index.ts';

const torchRef = JSON.parse(
  readFileSync(new URL('../shared/fixtures/torch-random.json', import.meta.url), 'utf8'),
) as { tinylora: { projectionSeed: number; index: number; u: number; r: number; P: number[][][] } };

beforeAll(async () => {
  await useTestBackend();
});

/** Llama-3.2-3B q_proj (3072 → 3072) and v_proj (3072 → 1024) over 28 layers. */
const llamaQV: TargetModule[] = Array.from({ length: 56 }, (_, i) => ({
  name: `model.layers.${i >> 1}.self_attn.${i % 2 ? 'v_proj' : 'q_proj'}`,
  kind: 'Linear',
  inFeatures: 3072,
  outFeatures: i % 2 ? 1024 : 3072,
}));

const parse = (raw: Record<string, unknown>) => parseMethodConfig('tinylora', raw) as TinyloraConfig;

describe('tinylora groups', () => {
  it('rounds half to even like Python', () => {
    expect([0.5, 1.5, 2.5, 3.5, 4.5, -1.5, -2.5, 2.4999, 2.5001].map(pythonRound)).toEqual([
      0, 2, 2, 4, 4, -2, -2, 2, 3,
    ]);
  });

  // Expected values computed with Python 3 from PEFT's formulas.
  it.each([
    [56, 0.0, 56, null],
    [56, 1.0, 1, null],
    [5, 0.5, 2, [0, 0, 1, 1, 1]],
    [3, 0.5, 2, [0, 1, 1]],
    [7, 0.5, 4, [0, 1, 2, 3, 3, 3, 3]],
    [1, 0.5, 1, [0]],
    [10, 0.35, 6, [0, 1, 2, 3, 4, 5, 5, 5, 5, 5]],
    [10, 0.25, 8, [0, 1, 2, 3, 4, 5, 6, 7, 7, 7]],
    [6, 0.75, 2, [0, 0, 0, 1, 1, 1]],
    [4, 0.625, 2, [0, 0, 1, 1]],
    [9, 0.5, 4, [0, 0, 1, 1, 2, 2, 3, 3, 3]],
  ] as const)('N=%i weightTying=%f → %i groups', (n, wt, groups, assignment) => {
    const result = tyingGroups(n, wt);
    expect(result.numGroups).toBe(groups);
    if (assignment) expect(result.groupOf).toEqual(assignment);
  });
});

describe('tinylora', () => {
  it('counts u per group: 3,584 on Llama-3.2-3B q,v (r 2, u 64) and 64 with weightTying 1', () => {
    const count = tinylora.count(llamaQV, parse({}));
    expect(count.trainable).toBe(3584);
    expect(count.shared).toHaveLength(56);
    expect(count.shared[3]).toEqual({
      name: 'tinylora_v.3',
      shape: [64],
      trainable: true,
      modules: ['model.layers.1.self_attn.v_proj'],
    });
    expect(count.perModule[1].tensors).toEqual([
      { name: 'tinylora_A', shape: [2, 3072], trainable: false },
      { name: 'tinylora_B', shape: [1024, 2], trainable: false },
      { name: 'tinylora_P', shape: [64, 2, 2], trainable: false },
    ]);
    expect(count.frozen).toBe(28 * (2 * 3072 + 3072 * 2 + 256) + 28 * (2 * 3072 + 1024 * 2 + 256));
    expect(tinylora.count(llamaQV, parse({ weightTying: 1 })).trainable).toBe(64);
  });

  it('PEFT defaults and validation messages', () => {
    expect(parse({})).toMatchObject({
      r: 2,
      u: 64,
      weightTying: 0,
      projectionSeed: 42,
      saveProjection: true,
      initWeights: true,
      initVBound: 0.02,
      dropout: 0,
    });
    expect(() => parse({ weightTying: 1.5 })).toThrow(/weightTying must be in \[0, 1\]/);
    expect(() => parse({ u: 0 })).toThrow(/u must be at least 1/);
    expect(() => parse({ initWeights: false })).toThrow(/initWeights/);
  });

  it('A = √S·Vᵀ and B = U·√S of the logical weight (Linear, Conv1D, Embedding)', () => {
    for (const [kind, inF, outF] of [
      ['Linear', 9, 6],
      ['Conv1D', 5, 8],
      ['Embedding', 11, 4],
    ] as const) {
      const { layer, dispose } = attached(tinylora, { r: 3, u: 4 }, kind, inF, outF);
      const l = layer.adapters.get('test') as TinyloraLayer;
      const w = dense(layer.logicalWeight());
      const ref = svd(w);
      const a = dense(l.a);
      const b = dense(l.b);
      const s = matrix(3, 3);
      for (let i = 0; i < 3; i++) s.data[i * 3 + i] = ref.s[i];
      // Rows of A and columns of B are orthogonal with squared norms S; W·Aᵀ = B·S; Wᵀ·B = Aᵀ·S.
      expect(maxAbsDiff(matmul(a, transpose(a)), s)).toBeLessThan(1e-5);
      expect(maxAbsDiff(matmul(transpose(b), b), s)).toBeLessThan(1e-5);
      expect(maxAbsDiff(matmul(w, transpose(a)), matmul(b, s))).toBeLessThan(1e-5);
      expect(maxAbsDiff(matmul(transpose(w), b), matmul(transpose(a), s))).toBeLessThan(1e-5);
      dispose();
    }
  });

  it('draws P of module i from torch.Generator().manual_seed(projectionSeed + i) (numpy reference)', () => {
    const ref = torchRef.tinylora;
    const layers = [0, 1].map((i) => randomAdaptableLayer('Linear', 6, 5, { name: `m.${i}.q`, seed: i + 1 }));
    const instance = tinylora.create(layers, parse({ r: ref.r, u: ref.u }), { adapterName: 'a', seed: 0 });
    const p = (layers[1].adapters.get('a') as TinyloraLayer).p;
    expect(p.shape).toEqual([ref.u, ref.r, ref.r]);
    const got = Array.from(p.dataSync());
    ref.P.flat(2).forEach((v, i) => {
      expect(Math.abs(got[i] - v)).toBeLessThan(1e-6);
    });
    instance.dispose();
    for (const l of layers) l.weight.dispose();
  });

  it('ties v across consecutive modules (N = 3, weightTying 0.5 → groups [0, 1, 1])', () => {
    const layers = [0, 1, 2].map((i) =>
      randomAdaptableLayer('Linear', 6, 5, { name: `m.${i}.q`, seed: i + 1 }),
    );
    const instance = tinylora.create(layers, parse({ weightTying: 0.5, u: 4 }), {
      adapterName: 'a',
      seed: 0,
    });
    const vOf = (i: number) => (layers[i].adapters.get('a') as TinyloraLayer).v;
    expect(vOf(1)).toBe(vOf(2));
    expect(vOf(0)).not.toBe(vOf(1));
    expect(instance.trainable().map((t) => [t.name, t.group])).toEqual([
      ['tinylora_v.0', 'adapter'],
      ['tinylora_v.1', 'adapter'],
    ]);
    instance.dispose();
    for (const l of layers) l.weight.dispose();
  });

  it("initWeights 'uniform' draws v in ±initVBound", () => {
    const { layer, dispose } = attached(
      tinylora,
      { initWeights: 'uniform', initVBound: 0.05 },
      'Linear',
      6,
      5,
    );
    const v = Array.from((layer.adapters.get('test') as TinyloraLayer).v.dataSync());
    expect(v.every((x) => Math.abs(x) <= 0.05)).toBe(true);
    expect(v.some((x) => x !== 0)).toBe(true);
    dispose();
  });

  it('ΔW = B·(Σ vᵢPᵢ)·A (float64 reference)', () => {
    const { layer, instance, dispose } = attached(tinylora, { r: 2, u: 5 }, 'Linear', 7, 4);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const l = layer.adapters.get('test') as TinyloraLayer;
    const v = l.v.dataSync();
    const p = l.p.dataSync();
    const core = matrix(2, 2);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 4; j++) core.data[j] += v[i] * p[i * 4 + j];
    const expected = matmul(matmul(dense(l.b), core), dense(l.a));
    expect(maxAbsDiff(dense(l.deltaWeight()), expected)).toBeLessThan(1e-5);
    dispose();
  });

  it('drops the input for Linear and the looked-up rows of B for Embedding', () => {
    const lin = attached(tinylora, { r: 2, u: 5, dropout: 0.5 }, 'Linear', 6, 5);
    randomizeVariables(lin.instance.trainable().map((t) => t.variable));
    const x = randomInput(lin.layer, 4) as tf.Tensor2D;
    const l = lin.layer.adapters.get('test') as TinyloraLayer;
    const got = tf.sub(lin.layer.forward(x, trainingContext(3, 0)), baseOutput(lin.layer, x));
    const xd = tf.dropout(x, 0.5, undefined, trainingContext(3, 0).nextSeed());
    expect(maxAbsDiff(dense(got), dense(tf.matMul(xd, l.deltaWeight(), false, true)))).toBeLessThan(1e-5);
    lin.dispose();

    const emb = attached(tinylora, { r: 2, u: 5, dropout: 0.5 }, 'Embedding', 9, 4);
    randomizeVariables(emb.instance.trainable().map((t) => t.variable));
    const ids = randomInput(emb.layer, 6) as tf.Tensor1D;
    const e = emb.layer.adapters.get('test') as TinyloraLayer;
    const gotE = tf.sub(emb.layer.embed(ids, trainingContext(4, 1)), baseOutput(emb.layer, ids));
    const rows = tf.dropout(tf.gather(e.b, ids), 0.5, undefined, trainingContext(4, 1).nextSeed());
    const expectedE = tf.matMul(tf.matMul(rows, e.core()), e.a);
    expect(maxAbsDiff(dense(gotE), dense(expectedE))).toBeLessThan(1e-5);
    expect(
      maxAbsDiff(
        dense(emb.layer.embed(ids, inferenceContext())),
        dense(tf.add(baseOutput(emb.layer, ids), tf.gather(e.deltaWeight(), ids))),
      ),
    ).toBeLessThan(1e-5);
    emb.dispose();
  });

  it('PEFT export: key names, config fields, saveProjection, and a round trip through fromPeft', () => {
    const layers = [0, 1, 2].map((i) =>
      randomAdaptableLayer('Linear', 6, 5, { name: `model.layers.${i}.q_proj`, seed: i + 1 }),
    );
    const config = parse({ weightTying: 0.5, u: 4, targetModules: ['q_proj'] });
    const instance = tinylora.create(layers, config, { adapterName: 'a', seed: 0 });
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const ctx: PeftContext = {
      baseModelNameOrPath: 'tiny-llama',
      taskType: 'CAUSAL_LM',
      targets: layers.map((l) => ({ name: l.name, kind: l.kind, inFeatures: 6, outFeatures: 5 })),
    };
    const { adapterConfig, tensors } = tinylora.peft!.toPeft(instance, ctx);
    expect(Object.keys(tensors).sort()).toEqual([
      'base_model.model.model.layers.0.q_proj.tinylora_A',
      'base_model.model.model.layers.0.q_proj.tinylora_B',
      'base_model.model.model.layers.0.q_proj.tinylora_P',
      'base_model.model.model.layers.1.q_proj.tinylora_A',
      'base_model.model.model.layers.1.q_proj.tinylora_B',
      'base_model.model.model.layers.1.q_proj.tinylora_P',
      'base_model.model.model.layers.2.q_proj.tinylora_A',
      'base_model.model.model.layers.2.q_proj.tinylora_B',
      'base_model.model.model.layers.2.q_proj.tinylora_P',
      'base_model.tinylora_v.0',
      'base_model.tinylora_v.1',
    ]);
    expect(adapterConfig).toMatchObject({
      peft_type: 'TINYLORA',
      r: 2,
      u: 4,
      weight_tying: 0.5,
      projection_seed: 42,
      save_projection: true,
      init_v_bound: 0.02,
      init_weights: true,
      tinylora_dropout: 0,
      fan_in_fan_out: false,
      bias: 'none',
      target_modules: ['q_proj'],
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'tiny-llama',
    });

    // A fresh adapter on the same modules loads the PEFT tensors without P (regenerated from the seed).
    const withoutP = Object.fromEntries(Object.entries(tensors).filter(([k]) => !k.endsWith('tinylora_P')));
    const loaded = tinylora.peft!.fromPeft({ ...adapterConfig, save_projection: false }, withoutP);
    expect(loaded.config.saveProjection).toBe(false);
    const x = randomInput(layers[2], 3) as tf.Tensor2D;
    const before = dense(layers[2].forward(x, inferenceContext()));
    instance.dispose();
    for (const l of layers) l.adapters.delete('a');
    const again = tinylora.create(layers, loaded.config, { adapterName: 'a', seed: 1 });
    again.loadState(loaded.state);
    expect(maxAbsDiff(dense(layers[2].forward(x, inferenceContext())), before)).toBeLessThan(1e-6);
    const noP = tinylora.peft!.toPeft(again, ctx);
    expect(Object.keys(noP.tensors).some((k) => k.endsWith('tinylora_P'))).toBe(false);
    expect(() => tinylora.peft!.fromPeft({ ...adapterConfig, peft_type: 'VERA' }, {})).toThrow(
      /expected "TINYLORA"/,
    );
    expect(() =>
      tinylora.peft!.fromPeft(adapterConfig, { 'base_model.model.x.lora_A.weight': tf.zeros([1]) }),
    ).toThrow(/unexpected TinyLoRA tensor "base_model.model.x.lora_A.weight"/);
    tf.dispose([...Object.values(tensors), ...Object.values(noP.tensors), x]);
    again.dispose();
    for (const l of layers) l.weight.dispose();
  });

  it('a few Adam steps reduce the loss (Linear and Embedding)', () => {
    for (const kind of ['Linear', 'Embedding'] as const) {
      const { first, last } = fitLosses(tinylora, { r: 2, u: 16 }, kind);
      expect(last).toBeLessThan(0.95 * first);
    }
  });

  it('merging adds ΔW to the logical weight of a Conv1D layer', () => {
    const { layer, instance, dispose } = attached(tinylora, { r: 2, u: 5 }, 'Conv1D', 6, 4);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const before = dense(layer.logicalWeight());
    const delta = dense((layer.adapters.get('test') as TinyloraLayer).deltaWeight());
    layer.merge('test');
    const after = dense(layer.logicalWeight());
    const expected = matrix(
      before.rows,
      before.cols,
      before.data.map((v, i) => v + delta.data[i]),
    );
    expect(maxAbsDiff(after, expected)).toBeLessThan(1e-6);
    expect(layer.weight.shape).toEqual([6, 4]);
    dispose();
  });
});
