import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { methodNames, methods, parseMethodConfig } from '../adapters/index.ts';
import type { AdapterInstance, MethodName } from '../adapters/types.ts';
import { useTestBackend } from '../backends/testing.ts';
import { matrix, svd } from '../linalg/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { collectMetrics } from './metrics.ts';
import { analyzeAdapter } from './snapshot.ts';
import { fakeModel, seededValues } from './testing.ts';

/**
 * Every registered method on real layers, trained to random values, against dense references. These cases add
 * method-specific checks (scaling factors); a method not listed runs with its defaults (rank 3 where it has one).
 */
type Case = { label: string; method: MethodName; config: Record<string, unknown> };
const listed: Case[] = [
  { label: 'lora', method: 'lora', config: { r: 3, loraAlpha: 6 } },
  { label: 'lora rsLoRA', method: 'lora', config: { r: 4, loraAlpha: 6, useRslora: true } },
  { label: 'lora DoRA', method: 'lora', config: { r: 2, loraAlpha: 2, useDora: true } },
  { label: 'tlora', method: 'tlora', config: { r: 3 } },
  { label: 'tinylora', method: 'tinylora', config: { r: 2, u: 3, weightTying: 0.5 } },
  { label: 'vera', method: 'vera', config: { r: 6 } },
  { label: 'loraxs', method: 'loraxs', config: { r: 3, alpha: 9 } },
];

const cases: Case[] = [
  ...listed,
  ...methodNames()
    .filter((name) => !listed.some((c) => c.method === name))
    .map((name) => {
      const shape = (methods[name].schema as unknown as { shape?: Record<string, unknown> }).shape;
      return { label: name, method: name, config: shape && 'r' in shape ? { r: 3 } : {} };
    }),
];

const modules = [
  { name: 'model.layers.0.self_attn.q_proj', rows: 12, cols: 12 },
  { name: 'model.layers.0.self_attn.v_proj', rows: 8, cols: 12 },
  { name: 'model.layers.1.self_attn.q_proj', rows: 12, cols: 12 },
  { name: 'model.layers.1.self_attn.v_proj', rows: 8, cols: 12 },
];

let model: LoadedModel;
beforeAll(async () => {
  await useTestBackend();
  model = fakeModel(modules, 4);
});
afterAll(() => model.dispose());

function create(method: MethodName, config: Record<string, unknown>): AdapterInstance {
  const definition = methods[method]!;
  const layers = [...model.layers.values()];
  const instance = definition.create(layers, parseMethodConfig(method, config), {
    adapterName: 'default',
    seed: 3,
  });
  // "train": every trainable tensor gets nonzero values
  instance.trainable().forEach((p, i) => {
    const values = tf.tensor(seededValues(p.variable.size, 50 + i, 0.5), p.variable.shape);
    p.variable.assign(values);
    values.dispose();
  });
  return instance;
}

function dense(t: tf.Tensor2D) {
  const m = matrix(t.shape[0], t.shape[1], t.dataSync());
  t.dispose();
  return { fro: Math.sqrt(m.data.reduce((a, b) => a + b * b, 0)), s: svd(m).s };
}

describe('analysis of every registered method', () => {
  it('covers all registered methods', () => {
    expect(new Set(cases.map((c) => c.method))).toEqual(new Set(Object.keys(methods)));
  });

  for (const c of cases) {
    it(`${c.label}: ‖ΔW‖, spectrum and scaling factors`, async () => {
      const instance = create(c.method, c.config);
      try {
        const before = tf.memory().numTensors;
        const { modules: out } = await collectMetrics(instance, model);
        expect(tf.memory().numTensors).toBe(before);
        for (const m of out) {
          const ref = dense(instance.layers.get(m.module)!.deltaWeight());
          expect(m.deltaFrobenius).toBeGreaterThan(0);
          expect(Math.abs(m.deltaFrobenius - ref.fro)).toBeLessThan(1e-5 * ref.fro);
          if (m.spectrum.source === 'low-rank') {
            m.spectrum.singularValues.forEach((s, i) => {
              expect(Math.abs(s - ref.s[i])).toBeLessThan(1e-5 * ref.s[0]);
            });
            expect(Math.abs(m.deltaSpectral! - ref.s[0])).toBeLessThan(1e-5 * ref.s[0]);
          } else {
            expect(c.config.useDora).toBe(true);
          }
          const trainable = m.tensors.filter((t) => t.trainable).map((t) => t.name);
          const vectors = m.scaling.vectors.map((v) => v.name);
          switch (c.label) {
            case 'lora':
              expect(m.scaling).toMatchObject({ scale: 2, kind: 'fixed' });
              expect(trainable).toEqual(['lora_A.weight', 'lora_B.weight']);
              break;
            case 'lora rsLoRA':
              expect(m.scaling.scale).toBeCloseTo(3, 12);
              break;
            case 'lora DoRA':
              expect(vectors).toEqual(['lora_magnitude_vector']);
              break;
            case 'tlora': {
              const alpha = instance.trainable().find((p) => p.name === `${m.module}.lora_scaling`)!;
              expect(m.scaling).toMatchObject({ kind: 'learned', scale: alpha.variable.dataSync()[0] });
              break;
            }
            case 'tinylora':
              // 4 modules, weightTying 0.5: 2 groups of 2 consecutive modules
              expect(m.scaling.group).toBe(out.indexOf(m) < 2 ? 0 : 1);
              expect(vectors).toEqual([`tinylora_v.${m.scaling.group}`]);
              break;
            case 'vera':
              expect(m.scaling.kind).toBe('none');
              expect(vectors.sort()).toEqual(['vera_lambda_b', 'vera_lambda_d']);
              break;
            case 'loraxs':
              expect(m.scaling).toMatchObject({ scale: 3, kind: 'fixed' });
              break;
          }
        }
        if (!c.config.useDora) {
          // the recorder's path above its exact-rank limit: norms from the Gram matrices, no spectrum
          const fast = await collectMetrics(instance, model, { gramSpectra: true });
          fast.modules.forEach((m, i) => {
            m.spectrum.singularValues.forEach((s, j) => {
              expect(Math.abs(s - out[i].spectrum.singularValues[j])).toBeLessThan(
                1e-6 * out[i].deltaSpectral!,
              );
            });
          });
          const gram = await collectMetrics(instance, model, { maxExactRank: 1 });
          gram.modules.forEach((m, i) => {
            expect(m.spectrum.source).toBe(out[i].spectrum.rank > 1 ? 'none' : 'low-rank');
            expect(Math.abs(m.deltaFrobenius - out[i].deltaFrobenius)).toBeLessThan(
              1e-5 * out[i].deltaFrobenius,
            );
            expect(Math.abs(m.deltaSpectral! - out[i].deltaSpectral!)).toBeLessThan(
              1e-5 * out[i].deltaSpectral!,
            );
          });
        }
        if (c.config.useDora) {
          const snap = await analyzeAdapter(instance, model);
          for (const m of snap.modules) {
            const ref = dense(instance.layers.get(m.module)!.deltaWeight());
            expect(m.spectrum.source).toBe('dense');
            m.spectrum.singularValues.forEach((s, i) => {
              expect(Math.abs(s - ref.s[i])).toBeLessThan(1e-5 * ref.s[0]);
            });
          }
        }
      } finally {
        instance.dispose();
        for (const layer of model.layers.values()) {
          layer.adapters.clear();
          layer.activeAdapters = [];
        }
      }
    });
  }
});
