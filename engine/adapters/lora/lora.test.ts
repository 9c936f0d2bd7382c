import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { type AdaptableLayer, inferenceContext, trainingContext } from '../../models/layers.ts';
import { loadModel } from '../../models/load.ts';
import { attachAdapter, detachAdapter } from '../attach.ts';
import { Rng } from '../random.ts';
import { parseMethodConfig } from '../registry.ts';
import {
  baseOutput,
  layerOutput,
  maxAbsDiff,
  randomAdaptableLayer,
  randomInput,
  randomizeVariables,
} from '../testing.ts';
import type { AdapterInstance } from '../types.ts';
import { type LoraConfig, patternKey } from './config.ts';
import { type DoraLayer, lora, loraLayers } from './index.ts';
import type { LoraLayer } from './layer.ts';

type M = number[][];
const arr = (t: tf.Tensor): M => t.arraySync() as M;
const vec = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const mm = (a: M, b: M): M => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const tr = (a: M): M => a[0].map((_, j) => a.map((row) => row[j]));
const add = (a: M, b: M, s = 1): M => a.map((row, i) => row.map((v, j) => v + s * b[i][j]));
const rowNorms = (a: M): number[] => a.map((row) => Math.sqrt(row.reduce((s, v) => s + v * v, 0)));
const maxDiff = (a: M, b: M): number =>
  Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
const magnitudeOf = (adapter: LoraLayer) => (adapter.variant as DoraLayer).magnitude;
const frob2 = (a: M): number => a.flat().reduce((s, v) => s + v * v, 0);

const created: { instance: AdapterInstance; layer: AdaptableLayer }[] = [];

function make(
  kind: 'Linear' | 'Conv1D' | 'Embedding',
  config: Partial<LoraConfig>,
  sizes: [number, number] = [6, 5],
  seed = 1,
): { layer: AdaptableLayer; adapter: LoraLayer; instance: AdapterInstance } {
  const layer = randomAdaptableLayer(kind, sizes[0], sizes[1], { seed });
  const parsed = parseMethodConfig('lora', config) as LoraConfig;
  const instance = lora.create([layer], parsed, { adapterName: 'a', seed: 3 });
  layer.activeAdapters = ['a'];
  created.push({ instance, layer });
  return { layer, adapter: loraLayers(instance).get(layer.name)!, instance };
}

beforeAll(async () => {
  await useTestBackend();
});

afterEach(() => {
  for (const { instance, layer } of created.splice(0)) {
    instance.dispose();
    layer.weight.dispose();
    layer.bias?.dispose();
  }
});

describe('initialisation', () => {
  test('true: A ~ kaiming-uniform(a=√5) = U(±1/√in), B = 0', () => {
    const { adapter } = make('Linear', { r: 16 }, [256, 8]);
    const a = vec(adapter.a);
    const bound = 1 / 16;
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(variance).toBeCloseTo(bound ** 2 / 3, 4);
    expect(vec(adapter.b).every((v) => v === 0)).toBe(true);
  });

  test('gaussian: A ~ N(0, (1/r)²), B = 0', () => {
    const { adapter } = make('Linear', { r: 4, initLoraWeights: 'gaussian' }, [1024, 8]);
    const a = vec(adapter.a);
    const std = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(std).toBeGreaterThan(0.24);
    expect(std).toBeLessThan(0.26);
    expect(vec(adapter.b).every((v) => v === 0)).toBe(true);
  });

  test('false: B ~ U(±1/√r), not a no-op', () => {
    const { adapter } = make('Linear', { r: 4, initLoraWeights: false });
    const b = vec(adapter.b);
    expect(b.some((v) => v !== 0)).toBe(true);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(0.5);
  });

  test('Embedding: lora_embedding_A = 0, lora_embedding_B ~ N(0, 1)', () => {
    const { adapter } = make('Embedding', { r: 8 }, [50, 128]);
    expect(adapter.a.shape).toEqual([8, 50]);
    expect(adapter.b.shape).toEqual([128, 8]);
    expect(vec(adapter.a).every((v) => v === 0)).toBe(true);
    const b = vec(adapter.b);
    const std = Math.sqrt(b.reduce((s, v) => s + v * v, 0) / b.length);
    expect(std).toBeGreaterThan(0.9);
    expect(std).toBeLessThan(1.1);
  });

  test('seeded: same seed and module give the same A; other seed or module differ', () => {
    const one = make('Linear', { r: 2 });
    const two = make('Linear', { r: 2 });
    expect(vec(one.adapter.a)).toEqual(vec(two.adapter.a));
    const layer = randomAdaptableLayer('Linear', 6, 5, { name: 'model.layers.1.q_proj' });
    const other = lora.create([layer], parseMethodConfig('lora', { r: 2 }) as LoraConfig, {
      adapterName: 'a',
      seed: 3,
    });
    created.push({ instance: other, layer });
    expect(vec(loraLayers(other).get(layer.name)!.a)).not.toEqual(vec(one.adapter.a));
  });
});

describe('scaling', () => {
  test('alpha/r, and alpha/√r with rsLoRA; ΔW = s·B·A (dense float64 reference)', () => {
    for (const useRslora of [false, true]) {
      const { adapter, instance } = make('Linear', { r: 4, loraAlpha: 6, useRslora });
      randomizeVariables(instance.trainable().map((t) => t.variable));
      const s = useRslora ? 6 / 2 : 6 / 4;
      expect(adapter.settings.scaling).toBe(s);
      const expected = mm(arr(adapter.b), arr(adapter.a)).map((row) => row.map((v) => v * s));
      const delta = adapter.deltaWeight();
      expect(maxDiff(arr(delta), expected)).toBeLessThan(1e-5);
      delta.dispose();
    }
  });

  test('rankPattern / alphaPattern: (.*\\.)?(key)$, first key wins', () => {
    expect(patternKey({ q_proj: 1 }, 'model.layers.0.self_attn.q_proj')).toBe('q_proj');
    expect(patternKey({ proj: 1 }, 'model.layers.0.self_attn.q_proj')).toBeNull();
    expect(patternKey({ 'layers\\.0\\..*': 1, q_proj: 2 }, 'model.layers.0.self_attn.q_proj')).toBe(
      'layers\\.0\\..*',
    );
    expect(patternKey({ 'layers.1.self_attn.q_proj': 1 }, 'model.layers.10.self_attn.q_proj')).toBeNull();
    const config = parseMethodConfig('lora', {
      r: 8,
      rankPattern: { q_proj: 2 },
      alphaPattern: { v_proj: 32 },
    }) as LoraConfig;
    const count = lora.count(
      [
        { name: 'm.layers.0.q_proj', kind: 'Linear', inFeatures: 10, outFeatures: 10 },
        { name: 'm.layers.0.v_proj', kind: 'Linear', inFeatures: 10, outFeatures: 4 },
      ],
      config,
    );
    expect(count.perModule.map((m) => m.trainable)).toEqual([2 * 20, 8 * 14]);
  });
});

describe('the adapted module as one op (adaptedForward)', () => {
  test.each([
    'Linear',
    'Conv1D',
  ] as const)('%s: y = x·Wᵀ + b + s·x·Aᵀ·Bᵀ and its gradients in x, A and B match a float64 reference', (kind) => {
    const { layer, adapter, instance } = make(kind, { r: 3, loraAlpha: 6 }, [7, 5]);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const ctx = trainingContext(1, 0);
    const x = tf.variable(randomInput(layer, 4) as tf.Tensor2D);
    const probe = tf.tensor2d(
      Array.from({ length: 4 * 5 }, (_, i) => Math.sin(i + 1)),
      [4, 5],
    );
    expect(adapter.adaptedForward(x, layer, ctx)).not.toBeNull();
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.forward(x, ctx), probe)),
      [x, adapter.a, adapter.b],
    );
    const w = layer.logicalWeight();
    const [X, W, A, B, P] = [arr(x), arr(w), arr(adapter.a), arr(adapter.b), arr(probe)];
    const s = adapter.settings.scaling;
    const bias = vec(layer.bias!);
    const y = add(mm(X, tr(W)), mm(mm(X, tr(A)), tr(B)), s).map((row) => row.map((v, j) => v + bias[j]));
    const loss = y.flat().reduce((sum, v, i) => sum + v * P.flat()[i], 0);
    const pb = mm(P, B);
    expect(Math.abs(value.dataSync()[0] - loss)).toBeLessThan(1e-4);
    expect(maxDiff(arr(grads[x.name]), add(mm(P, W), mm(pb, A), s))).toBeLessThan(1e-5);
    expect(
      maxDiff(
        arr(grads[adapter.a.name]),
        mm(tr(pb), X).map((r) => r.map((v) => v * s)),
      ),
    ).toBeLessThan(1e-5);
    expect(
      maxDiff(
        arr(grads[adapter.b.name]),
        mm(tr(P), mm(X, tr(A))).map((r) => r.map((v) => v * s)),
      ),
    ).toBeLessThan(1e-5);
    tf.dispose([x, probe, w, value, ...Object.values(grads)]);
  });

  test('is not taken with dropout while training, a variant or a lora_bias (the composed ops run)', () => {
    const dropout = make('Linear', { r: 2, dropout: 0.1 });
    const dora = make('Linear', { r: 2, useDora: true });
    const biased = make('Linear', { r: 2, loraBias: true });
    tf.tidy(() => {
      const fused = ({ layer, adapter }: ReturnType<typeof make>, ctx = inferenceContext()) =>
        adapter.adaptedForward(randomInput(layer, 2) as tf.Tensor2D, layer, ctx) !== null;
      expect(fused(dropout, trainingContext(1, 0))).toBe(false);
      expect(fused(dropout)).toBe(true);
      expect(fused(dora)).toBe(false);
      expect(fused(biased)).toBe(false);
    });
  });
});

/** Counts calls of a kernel of the active backend until `stop()`; null where the backend has no such kernel. */
function countKernel(name: string): { stop(): number | null } {
  const config = tf.getKernel(name, tf.getBackend()) as { kernelFunc: tf.KernelFunc } | undefined;
  if (!config) return { stop: () => null };
  const inner = config.kernelFunc;
  let calls = 0;
  config.kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => {
    calls++;
    return inner(args);
  }) as tf.KernelFunc;
  return {
    stop: () => {
      config.kernelFunc = inner;
      return calls;
    },
  };
}

describe('a checkpointed model with LoRA on every linear module', () => {
  test("gets the gradients of the plain backward pass, the recomputation skipping down_proj's frozen product", async () => {
    const model = await loadModel(join(import.meta.dirname, '../../models/fixtures/llama'));
    const instance = attachAdapter(model, 'lora', {
      r: 2,
      targetModules: 'all-linear',
      initLoraWeights: false,
    });
    const variables = instance.trainable().map((t) => t.variable);
    const ids = [
      [1, 5, 9, 2, 7],
      [3, 3, 8, 1, 4],
    ];
    const batch = {
      inputIds: tf.tensor2d(ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(
        ids.map((r) => r.map(() => 1)),
        undefined,
        'int32',
      ),
    };
    const probe = tf.randomNormal([2, 5, model.spec.vocabSize], 0, 1, 'float32', 3);
    const gradsWith = (checkpoint: boolean) => {
      const ctx = {
        ...trainingContext(1, 0),
        ...(checkpoint ? { checkpoint: { params: () => variables } } : {}),
      };
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(model.forward(batch, ctx), probe)) as tf.Scalar,
        variables,
      );
      value.dispose();
      return variables.map((v) => {
        const g = grads[v.name].dataSync().slice();
        grads[v.name].dispose();
        return g;
      });
    };
    const plain = gradsWith(false);
    const frozenCalls = countKernel('StudioFrozenMatMul');
    const recomputed = gradsWith(true);
    const calls = frozenCalls.stop();
    plain.forEach((g, i) => {
      const scale = Math.max(...g.map(Math.abs));
      expect(Math.max(...g.map((v, j) => Math.abs(v - recomputed[i][j]))) / scale).toBeLessThan(1e-5);
    });
    if (calls !== null) {
      // per block: 7 products forward, 6 recomputed (down_proj's is not), 7 backward; the head's forward and backward
      expect(calls).toBe(model.spec.numLayers * (7 + 6 + 7) + 2);
    }
    tf.dispose([batch.inputIds, batch.attentionMask, probe]);
    detachAdapter(model, 'default');
    model.dispose();
  });
});

describe('DoRA', () => {
  /** PEFT's DoRA on rows: y = k ⊙ (W'·x_d + s·B·A·x_d) + b + (k − 1)·0 with k = m / ‖W' + s·B·A‖ (treated constant). */
  function doraReference(
    w: M,
    bias: number[] | null,
    a: M,
    b: M,
    m: number[],
    s: number,
    x: M,
    norm?: number[],
  ): M {
    const adapted = add(w, mm(b, a), s);
    const k = (norm ?? rowNorms(adapted)).map((n, i) => m[i] / n);
    return mm(x, tr(adapted)).map((row) => row.map((v, j) => k[j] * v + (bias ? bias[j] : 0)));
  }

  test('magnitude starts at the row norms of W (a no-op), Linear and Conv1D', () => {
    for (const kind of ['Linear', 'Conv1D'] as const) {
      const { layer, adapter } = make(kind, { r: 2, useDora: true });
      const w = layer.logicalWeight();
      expect(
        Math.max(...vec(magnitudeOf(adapter)).map((v, i) => Math.abs(v - rowNorms(arr(w))[i]))),
      ).toBeLessThan(1e-6);
      w.dispose();
    }
  });

  test('forward matches a float64 reference (inference, and training with a dropout mask)', () => {
    const { layer, adapter, instance } = make('Linear', { r: 3, useDora: true, loraAlpha: 5, dropout: 0.3 });
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 4);
    const expected = doraReference(
      arr(layer.weight.toTensor()),
      vec(layer.bias!),
      arr(adapter.a),
      arr(adapter.b),
      vec(magnitudeOf(adapter)),
      5 / 3,
      arr(x),
    );
    const y = layerOutput(layer, x);
    expect(maxDiff(arr(y), expected)).toBeLessThan(1e-4);

    // With dropout active PEFT recomputes the base part on the dropped input: y = Wx + b + (k−1)·W·x_d + k·s·B·A·x_d.
    const seed = 1234;
    const ctx = { training: true, nextSeed: () => seed };
    const xd = tf.dropout(x, 0.3, undefined, seed);
    const w = arr(layer.weight.toTensor());
    const adapted = add(w, mm(arr(adapter.b), arr(adapter.a)), 5 / 3);
    const k = rowNorms(adapted).map((n, i) => vec(magnitudeOf(adapter))[i] / n);
    const base = mm(arr(x), tr(w));
    const xdw = mm(arr(xd), tr(w));
    const lora = mm(mm(arr(xd), tr(arr(adapter.a))), tr(arr(adapter.b)));
    const bias = vec(layer.bias!);
    const trainingExpected = base.map((row, i) =>
      row.map((v, j) => v + bias[j] + (k[j] - 1) * xdw[i][j] + k[j] * (5 / 3) * lora[i][j]),
    );
    const yTrain = layer.forward(x as tf.Tensor2D, ctx);
    expect(maxDiff(arr(yTrain), trainingExpected)).toBeLessThan(1e-4);
    tf.dispose([x, y, xd, yTrain]);
  });

  test('gradients match finite differences of the reference with the weight norm held constant (detached)', () => {
    const { layer, adapter, instance } = make('Linear', { r: 2, useDora: true, loraAlpha: 4 }, [5, 4]);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 3);
    const probe = new Rng(4).normalArray(3 * 4);
    const w = arr(layer.weight.toTensor());
    const bias = vec(layer.bias!);
    const a0 = arr(adapter.a);
    const b0 = arr(adapter.b);
    const m0 = vec(magnitudeOf(adapter));
    const norm = rowNorms(add(w, mm(b0, a0), 2));
    const loss = (a: M, b: M, m: number[]) =>
      doraReference(w, bias, a, b, m, 2, arr(x), norm)
        .flat()
        .reduce((s, v, i) => s + v * probe[i], 0);
    const eps = 1e-6;
    const numeric = {
      a: a0.map((row, i) =>
        row.map((_, j) => {
          const plus = a0.map((r) => [...r]);
          const minus = a0.map((r) => [...r]);
          plus[i][j] += eps;
          minus[i][j] -= eps;
          return (loss(plus, b0, m0) - loss(minus, b0, m0)) / (2 * eps);
        }),
      ),
      b: b0.map((row, i) =>
        row.map((_, j) => {
          const plus = b0.map((r) => [...r]);
          const minus = b0.map((r) => [...r]);
          plus[i][j] += eps;
          minus[i][j] -= eps;
          return (loss(a0, plus, m0) - loss(a0, minus, m0)) / (2 * eps);
        }),
      ),
      m: m0.map((_, i) => {
        const plus = [...m0];
        const minus = [...m0];
        plus[i] += eps;
        minus[i] -= eps;
        return (loss(a0, b0, plus) - loss(a0, b0, minus)) / (2 * eps);
      }),
    };
    const probeT = tf.tensor2d(probe, [3, 4]);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.forward(x as tf.Tensor2D, inferenceContext()), probeT)) as tf.Scalar,
      [adapter.a, adapter.b, magnitudeOf(adapter)],
    );
    expect(maxDiff(arr(grads[adapter.a.name]), numeric.a)).toBeLessThan(1e-4);
    expect(maxDiff(arr(grads[adapter.b.name]), numeric.b)).toBeLessThan(1e-4);
    expect(maxDiff([vec(grads[magnitudeOf(adapter).name])], [numeric.m])).toBeLessThan(1e-4);
    tf.dispose([x, probeT, ...Object.values(grads)]);
  });

  test('merge / unmerge (Linear, Conv1D, Embedding), and ΔW is not low-rank', () => {
    for (const kind of ['Linear', 'Conv1D', 'Embedding'] as const) {
      const { layer, adapter, instance } = make(kind, { r: 2, useDora: true });
      randomizeVariables(instance.trainable().map((t) => t.variable));
      const x = randomInput(layer, 4);
      const y = layerOutput(layer, x);
      const before = layer.weight.toTensor();
      layer.merge('a');
      const merged = layerOutput(layer, x);
      const delta = adapter.deltaWeight();
      layer.unmerge('a');
      const deltaAfter = adapter.deltaWeight();
      expect(maxAbsDiff(merged, y)).toBeLessThan(1e-4);
      expect(maxAbsDiff(layer.weight.toTensor(), before)).toBeLessThan(1e-5);
      expect(maxAbsDiff(delta, deltaAfter)).toBeLessThan(1e-5);
      expect(adapter.lowRankFactors()).toBeNull();
      tf.dispose([x, y, before, merged, delta, deltaAfter]);
    }
  });

  test('Embedding DoRA matches a float64 reference: k ⊙ (W[ids] + s·(B·A)ᵀ[ids]), k per embedding column', () => {
    const { layer, adapter, instance } = make('Embedding', { r: 2, useDora: true, loraAlpha: 3 }, [7, 4]);
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const ids = tf.tensor1d([0, 3, 6, 3], 'int32');
    const adapted = add(arr(layer.weight.toTensor()), tr(mm(arr(adapter.b), arr(adapter.a))), 1.5);
    const colNorms = rowNorms(tr(adapted));
    const m = vec(magnitudeOf(adapter));
    const expected = [0, 3, 6, 3].map((id) => adapted[id].map((v, j) => (m[j] / colNorms[j]) * v));
    const y = layerOutput(layer, ids);
    expect(maxDiff(arr(y), expected)).toBeLessThan(1e-4);
    tf.dispose([ids, y]);
  });
});

describe('PiSSA and OLoRA', () => {
  /** W = U·diag(σ)·Vᵀ with orthonormal U, V (Gram–Schmidt of seeded Gaussians) and known σ. */
  function knownSpectrum(out: number, inF: number, sigma: number[]): M {
    const rng = new Rng(17);
    const orth = (rows: number, cols: number): M => {
      const q: number[][] = [];
      for (let j = 0; j < cols; j++) {
        let v = Array.from({ length: rows }, () => rng.normal());
        for (const u of q) {
          const d = u.reduce((s, x, i) => s + x * v[i], 0);
          v = v.map((x, i) => x - d * u[i]);
        }
        const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
        q.push(v.map((x) => x / n));
      }
      return tr(q);
    };
    const u = orth(out, sigma.length);
    const v = orth(inF, sigma.length);
    return mm(
      u.map((row) => row.map((x, j) => x * sigma[j])),
      tr(v),
    );
  }

  test('PiSSA: A·Aᵀ = B·Bᵀ-diag = S_r/s, residual holds the tail spectrum, W_res + s·B·A = W', () => {
    for (const kind of ['Linear', 'Conv1D'] as const) {
      const sigma = [5, 4, 3, 2, 1];
      const w = knownSpectrum(6, 7, sigma);
      const layer = randomAdaptableLayer(kind, 7, 6);
      layer.setLogicalWeight(tf.tensor2d(w));
      const config = parseMethodConfig('lora', {
        r: 2,
        loraAlpha: 4,
        initLoraWeights: 'pissa',
      }) as LoraConfig;
      const instance = lora.create([layer], config, { adapterName: 'a', seed: 0 });
      created.push({ instance, layer });
      const adapter = loraLayers(instance).get(layer.name)!;
      const s = 2;
      const aat = mm(arr(adapter.a), tr(arr(adapter.a)));
      const btb = mm(tr(arr(adapter.b)), arr(adapter.b));
      const expectedDiag = [
        [5 / s, 0],
        [0, 4 / s],
      ];
      expect(maxDiff(aat, expectedDiag)).toBeLessThan(1e-4);
      expect(maxDiff(btb, expectedDiag)).toBeLessThan(1e-4);
      const residual = layer.logicalWeight();
      expect(frob2(arr(residual))).toBeCloseTo(9 + 4 + 1, 3);
      expect(maxDiff(add(arr(residual), mm(arr(adapter.b), arr(adapter.a)), s), w)).toBeLessThan(1e-4);
      // Outputs are unchanged at init, and detach puts the original weight back.
      instance.detach!();
      const restored = layer.logicalWeight();
      expect(maxDiff(arr(restored), w)).toBeLessThan(1e-5);
      tf.dispose([residual, restored]);
    }
  });

  test('OLoRA: B has orthonormal columns, A is upper triangular, W_res + s·B·A = W', () => {
    const { layer, adapter } = make('Linear', { r: 3, loraAlpha: 6, initLoraWeights: 'olora' }, [6, 5]);
    const original = add(arr(layer.weight.toTensor()), mm(arr(adapter.b), arr(adapter.a)), 2);
    const btb = mm(tr(arr(adapter.b)), arr(adapter.b));
    expect(
      maxDiff(btb, [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]),
    ).toBeLessThan(1e-5);
    const a = arr(adapter.a);
    expect(a[1][0]).toBe(0);
    expect(a[2][0]).toBe(0);
    expect(a[2][1]).toBe(0);
    // B·A is the rank-3 QR truncation of W: it reproduces W's first three columns exactly.
    const ba = mm(arr(adapter.b), a);
    expect(
      maxDiff(
        ba.map((row) => row.slice(0, 3)),
        original.map((row) => row.slice(0, 3)),
      ),
    ).toBeLessThan(1e-5);
  });

  test('PiSSA needs r ≤ min(out, in) and is refused on Embedding', () => {
    const layer = randomAdaptableLayer('Linear', 3, 2);
    const config = parseMethodConfig('lora', { r: 4, initLoraWeights: 'pissa' }) as LoraConfig;
    expect(() => lora.create([layer], config, { adapterName: 'a', seed: 0 })).toThrow(
      /needs r ≤ min\(out, in\) = 2/,
    );
    const emb = randomAdaptableLayer('Embedding', 5, 3);
    expect(() => lora.create([emb], config, { adapterName: 'a', seed: 0 })).toThrow(
      /not supported for Embedding/,
    );
    layer.weight.dispose();
    emb.weight.dispose();
    layer.bias!.dispose();
  });
});

describe('lora_bias', () => {
  test('forward adds s·b_B; merge moves it into the base bias; unmerge restores', () => {
    const { layer, adapter, instance } = make('Linear', { r: 2, loraAlpha: 4, loraBias: true });
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const x = randomInput(layer, 3);
    const y = layerOutput(layer, x);
    const base = baseOutput(layer, x);
    const lora = mm(mm(arr(x), tr(arr(adapter.a))), tr(arr(adapter.b)));
    const b = vec(adapter.bias!);
    const expected = arr(base).map((row, i) => row.map((v, j) => v + 2 * (lora[i][j] + b[j])));
    expect(maxDiff(arr(y), expected)).toBeLessThan(1e-4);
    const biasBefore = vec(layer.bias!);
    layer.merge('a');
    const merged = layerOutput(layer, x);
    expect(maxAbsDiff(merged, y)).toBeLessThan(1e-4);
    layer.unmerge('a');
    expect(Math.max(...vec(layer.bias!).map((v, i) => Math.abs(v - biasBefore[i])))).toBeLessThan(1e-6);
    tf.dispose([x, y, base, merged]);
  });

  test('is refused with DoRA and with PiSSA/OLoRA', () => {
    expect(() => parseMethodConfig('lora', { loraBias: true, useDora: true })).toThrow(
      /loraBias cannot be combined with useDora/,
    );
    expect(() => parseMethodConfig('lora', { loraBias: true, initLoraWeights: 'pissa' })).toThrow(
      /loraBias requires initLoraWeights true or false/,
    );
  });
});

describe('config schema', () => {
  test('PEFT defaults and clear messages', () => {
    expect(parseMethodConfig('lora', {})).toMatchObject({
      r: 8,
      loraAlpha: 8,
      dropout: 0,
      useRslora: false,
      useDora: false,
      initLoraWeights: true,
      rankPattern: {},
      alphaPattern: {},
      loraBias: false,
    });
    expect(() => parseMethodConfig('lora', { dropout: 1 })).toThrow(/dropout: dropout must be in \[0, 1\)/);
    expect(() => parseMethodConfig('lora', { r: 2.5 })).toThrow(/r: r must be a whole number/);
    expect(() => parseMethodConfig('lora', { lora_alpha: 16 })).toThrow(/lora_alpha/);
    expect(() => parseMethodConfig('lora', { initLoraWeights: 'eva' })).toThrow(/initLoraWeights/);
  });
});

describe('training smoke test', () => {
  test('a few Adam steps on a tiny layer reduce the loss towards a low-rank target', () => {
    const { layer, instance } = make('Linear', { r: 2, loraAlpha: 2 }, [6, 4]);
    const rng = new Rng(8);
    const x = tf.tensor2d(rng.normalArray(32 * 6), [32, 6]);
    const target = tf.tidy(() => {
      const u = tf.tensor2d(rng.normalArray(4 * 2), [4, 2]);
      const v = tf.tensor2d(rng.normalArray(2 * 6), [2, 6]);
      return tf.add(baseOutput(layer, x), tf.matMul(x, tf.matMul(u, v), false, true));
    });
    const optimizer = tf.train.adam(0.05);
    const vars = instance.trainable().map((t) => t.variable);
    const loss = () => tf.mean(tf.square(tf.sub(layer.forward(x, inferenceContext()), target))) as tf.Scalar;
    const first = tf.tidy(() => loss().dataSync()[0]);
    for (let step = 0; step < 60; step++) {
      const l = optimizer.minimize(loss, true, vars);
      l?.dispose();
    }
    const last = tf.tidy(() => loss().dataSync()[0]);
    expect(last).toBeLessThan(0.2 * first);
    optimizer.dispose();
    tf.dispose([x, target]);
  });
});
