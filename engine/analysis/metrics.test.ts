import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { matrix, svd } from '../linalg/index.ts';
import { collectMetrics, newMetricsCache } from './metrics.ts';
import { analyzeAdapter } from './snapshot.ts';
import { fakeDora, fakeLora, fakeModel, fakeTlora } from './testing.ts';

beforeAll(async () => {
  await useTestBackend();
});

const modules = [
  { name: 'model.layers.0.self_attn.q_proj', rows: 24, cols: 16 },
  { name: 'model.layers.1.self_attn.q_proj', rows: 24, cols: 16 },
  { name: 'transformer.h.0.attn.c_attn', kind: 'Conv1D' as const, rows: 18, cols: 12 },
];

/** Dense references straight from tfjs: ΔW, W0 and the norms of one tensor. */
function denseRef(t: tf.Tensor2D) {
  const m = matrix(t.shape[0], t.shape[1], t.dataSync());
  const s = svd(m).s;
  return { fro: Math.sqrt(m.data.reduce((a, b) => a + b * b, 0)), s };
}

describe('collectMetrics', () => {
  it('LoRA: norms of ΔW, tensors and W0 and the low-rank spectrum agree with dense computations', async () => {
    const model = fakeModel(modules);
    const instance = fakeLora(model, 4, 16);
    const before = tf.memory().numTensors;
    const { modules: out } = await collectMetrics(instance, model);
    expect(tf.memory().numTensors).toBe(before);
    expect(out.map((m) => m.module)).toEqual(modules.map((m) => m.name));
    for (const m of out) {
      const layer = instance.layers.get(m.module)!;
      const delta = layer.deltaWeight();
      const ref = denseRef(delta);
      delta.dispose();
      expect(m.deltaFrobenius).toBeCloseTo(ref.fro, 5);
      expect(m.deltaSpectral).toBeCloseTo(ref.s[0], 5);
      m.spectrum.singularValues.forEach((s, i) => {
        expect(s).toBeCloseTo(ref.s[i], 5);
      });
      expect(m.spectrum.source).toBe('low-rank');
      expect(m.spectrum.rank).toBe(4);
      const w0 = model.layers.get(m.module)!.logicalWeight();
      const base = denseRef(w0);
      w0.dispose();
      expect([m.rows, m.cols]).toEqual(w0.shape);
      expect(m.baseFrobenius).toBeCloseTo(base.fro, 5);
      expect(m.relativeDelta).toBeCloseTo(ref.fro / base.fro, 5);
      const a = m.tensors.find((t) => t.name === 'lora_A')!;
      const aRef = denseRef(
        instance.tensors.find((t) => t.key === `${m.module}.lora_A`)!.variable as tf.Tensor2D,
      );
      expect(a.frobenius).toBeCloseTo(aRef.fro, 5);
      expect(a.spectral).toBeCloseTo(aRef.s[0], 5);
      expect(a.trainable).toBe(true);
      expect(m.scaling).toMatchObject({ scale: 4, kind: 'fixed', formula: 'loraAlpha / r = 16 / 4' });
    }
    expect(out[0]).toMatchObject({ layerIndex: 0, role: 'model.layers.*.self_attn.q_proj' });
    expect(out[2]).toMatchObject({ layerIndex: 0, role: 'transformer.h.*.attn.c_attn', rows: 18, cols: 12 });
    instance.dispose();
    model.dispose();
  });

  it('TLoRA: reads the learned α, flags frozen tensors and caches their norms', async () => {
    const model = fakeModel(modules.slice(0, 2));
    const instance = fakeTlora(model, 3, [1.5, -0.25]);
    const cache = newMetricsCache();
    const first = await collectMetrics(instance, model, { cache });
    expect(first.modules.map((m) => m.scaling.scale)).toEqual([1.5, -0.25]);
    expect(first.modules[0].scaling).toMatchObject({ kind: 'learned', formula: 'learned α (lora_scaling)' });
    expect(first.modules[0].tensors.map((t) => [t.name, t.trainable])).toEqual([
      ['random_A', false],
      ['lora_B', true],
      ['random_C', false],
      ['lora_scaling', true],
    ]);
    expect(cache.frozen.size).toBe(4);
    // the second record downloads only trainable tensors and reports the same frozen norms
    const second = await collectMetrics(instance, model, { cache });
    expect([...second.state.keys()].every((k) => !k.includes('random'))).toBe(true);
    expect(second.modules[1].tensors[0]).toEqual(first.modules[1].tensors[0]);
    const b = second.modules[0].tensors.find((t) => t.name === 'lora_B')!;
    expect(second.modules[0].trainableNorm).toBeCloseTo(Math.hypot(b.frobenius, 1.5), 6);
    instance.dispose();
    model.dispose();
  });

  it('DoRA (no factors): cheap path reports ‖ΔW‖_F only; the snapshot flags a dense spectrum', async () => {
    const model = fakeModel(modules.slice(0, 1));
    const instance = fakeDora(model, 2);
    const cheap = await collectMetrics(instance, model);
    const delta = instance.layers.get(modules[0].name)!.deltaWeight();
    const ref = denseRef(delta);
    delta.dispose();
    expect(cheap.modules[0].deltaFrobenius).toBeCloseTo(ref.fro, 5);
    expect(cheap.modules[0].spectrum.source).toBe('none');
    expect(cheap.modules[0].scaling.vectors.map((v) => v.name)).toEqual(['lora_magnitude_vector']);
    const snap = await analyzeAdapter(instance, model);
    const m = snap.modules[0];
    expect(m.spectrum.source).toBe('dense');
    expect(m.spectrum.note).toMatch(/no low-rank factors/);
    m.spectrum.singularValues.forEach((s, i) => {
      expect(s).toBeCloseTo(ref.s[i], 5);
    });
    instance.dispose();
    model.dispose();
  });
});

describe('analyzeAdapter', () => {
  it('histograms W0, ΔW and each tensor; budget counts trainable and frozen parameters', async () => {
    const model = fakeModel(modules.slice(0, 2), 3, 10_000);
    const instance = fakeTlora(model, 3, [1, 1]);
    const before = tf.memory().numTensors;
    const snap = await analyzeAdapter(instance, model, { step: 5, bins: 10 });
    expect(tf.memory().numTensors).toBe(before);
    expect(snap).toMatchObject({ kind: 'snapshot', step: 5, method: 'tlora', version: 1 });
    expect(snap.budget).toEqual({
      trainable: 2 * (9 + 1),
      frozenAdapter: 2 * (16 * 3 + 3 * 24),
      modelParameters: 10_000,
      fraction: 20 / 10_000,
    });
    const m = snap.modules[0];
    expect(m.histograms.base.counts.reduce((a, b) => a + b)).toBe(24 * 16);
    expect(m.histograms.delta.counts.reduce((a, b) => a + b)).toBe(24 * 16);
    expect(Object.keys(m.histograms.tensors)).toEqual(['random_A', 'lora_B', 'random_C', 'lora_scaling']);
    const w0 = Array.from(model.layers.get(m.module)!.weight.float32());
    const mean = w0.reduce((a, b) => a + b) / w0.length;
    expect(m.histograms.base.moments.mean).toBeCloseTo(mean, 6);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    instance.dispose();
    model.dispose();
  });
});
