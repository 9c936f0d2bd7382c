import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import type { AdaptableKind, AdaptableLayer } from '../models/layers.ts';
import { escapeRegex } from './peft.ts';
import { Rng } from './random.ts';
import { getMethod, methodNames, parseMethodConfig } from './registry.ts';
import {
  baseOutput,
  denseDelta,
  gradientCheck,
  layerOutput,
  maxAbs,
  maxAbsDiff,
  randomAdaptableLayer,
  randomInput,
  randomizeVariables,
} from './testing.ts';
import type { AdapterInstance, MethodName } from './types.ts';

/**
 * Every registered method must pass these checks on every module kind it supports. The first config of a
 * method is its defaults (with a small rank); add variants that change the math here.
 */
const variants: Partial<Record<MethodName, Record<string, unknown>[]>> = {
  lora: [
    { r: 3 },
    { r: 3, loraAlpha: 5, useRslora: true },
    { r: 2, initLoraWeights: 'gaussian', dropout: 0.2 },
    { r: 4, rankPattern: { 'layers\\.0\\..*': 2 }, alphaPattern: { linear: 3 } },
  ],
  tlora: [{ r: 4 }, { r: 2, projectionSeed: 123 }],
  tinylora: [{ r: 3 }, { r: 2, u: 5, initWeights: 'uniform' }, { r: 2, u: 3 }],
  vera: [{ r: 3 }, { r: 4, dInitial: 0.5, initWeights: false }],
  loraxs: [{ r: 3 }, { r: 2, alpha: 5, initStd: 0.1 }],
};

function configsFor(method: MethodName): Record<string, unknown>[] {
  const listed = variants[method];
  if (listed) return listed;
  const schema = getMethod(method).schema as unknown as { shape?: Record<string, unknown> };
  return [schema.shape && 'r' in schema.shape ? { r: 3 } : {}];
}

const sizes: Record<AdaptableKind, [number, number]> = { Linear: [7, 5], Conv1D: [6, 8], Embedding: [9, 5] };
const rows = 4;

beforeAll(async () => {
  await useTestBackend();
});

for (const method of methodNames()) {
  const definition = getMethod(method);
  describe(`${method} conformance`, () => {
    for (const kind of definition.supportedKinds) {
      configsFor(method).forEach((rawConfig, variantIndex) => {
        describe(`${kind} ${JSON.stringify(rawConfig)}`, () => {
          let layer: AdaptableLayer;
          let instance: AdapterInstance;
          let input: tf.Tensor;

          const setup = () => {
            const [inF, outF] = sizes[kind];
            layer = randomAdaptableLayer(kind, inF, outF, { seed: 11 + variantIndex });
            const config = parseMethodConfig(method, rawConfig);
            instance = definition.create([layer], config, { adapterName: 'test', seed: 7 });
            layer.activeAdapters = ['test'];
            input = randomInput(layer, rows);
          };

          afterEach(() => {
            instance.dispose();
            layer.weight.dispose();
            layer.bias?.dispose();
            input.dispose();
          });

          if (variantIndex === 0) {
            test('the initial adapter leaves outputs unchanged', () => {
              setup();
              const y = layerOutput(layer, input);
              const base = baseOutput(layer, input);
              expect(maxAbsDiff(y, base)).toBeLessThanOrEqual(1e-3 * Math.max(1, maxAbs(base)));
              tf.dispose([y, base]);
            });
          }

          test('forward − base equals the dense x·ΔWᵀ, and lowRankFactors multiply to ΔW', () => {
            setup();
            randomizeVariables(instance.trainable().map((t) => t.variable));
            const adapter = layer.adapters.get('test')!;
            const y = layerOutput(layer, input);
            const base = baseOutput(layer, input);
            const delta = adapter.deltaWeight();
            expect(delta.shape).toEqual(
              kind === 'Embedding'
                ? [layer.inFeatures, layer.outFeatures]
                : [layer.outFeatures, layer.inFeatures],
            );
            const expected = denseDelta(kind, input, delta);
            const got = tf.sub(y, base);
            expect(maxAbs(expected)).toBeGreaterThan(1e-3);
            expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expected)));
            const factors = adapter.lowRankFactors();
            if (factors) {
              const product = tf.matMul(factors.left, factors.right);
              expect(maxAbsDiff(product, delta)).toBeLessThan(1e-5 * Math.max(1, maxAbs(delta)));
              tf.dispose([product, factors.left, factors.right]);
            }
            tf.dispose([y, base, delta, expected, got]);
          });

          test('merge keeps outputs, unmerge restores the base weight', () => {
            setup();
            randomizeVariables(instance.trainable().map((t) => t.variable));
            const before = layer.weight.toTensor();
            const y = layerOutput(layer, input);
            layer.merge('test');
            expect(maxAbsDiff(layer.weight.toTensor(), before)).toBeGreaterThan(1e-3);
            const merged = layerOutput(layer, input);
            expect(maxAbsDiff(merged, y)).toBeLessThan(1e-4 * Math.max(1, maxAbs(y)));
            layer.unmerge('test');
            expect(maxAbsDiff(layer.weight.toTensor(), before)).toBeLessThan(
              1e-5 * Math.max(1, maxAbs(before)),
            );
            const after = layerOutput(layer, input);
            expect(maxAbsDiff(after, y)).toBeLessThan(1e-4 * Math.max(1, maxAbs(y)));
            tf.dispose([before, y, merged, after]);
          });

          test('gradients of every trainable tensor match finite differences', () => {
            setup();
            const trainable = instance.trainable();
            expect(trainable.length).toBeGreaterThan(0);
            randomizeVariables(trainable.map((t) => t.variable));
            const [n, out] = [rows, layer.outFeatures];
            const probe = tf.tensor2d(new Rng(9).normalArray(n * out), [n, out]);
            const loss = () => tf.sum(tf.mul(layerOutput(layer, input), probe)) as tf.Scalar;
            const mismatches = gradientCheck(
              loss,
              trainable.map((t) => ({ name: t.name, variable: t.variable })),
            );
            expect(mismatches).toEqual([]);
            probe.dispose();
          });

          test('state() / loadState() round-trip; bad state is refused with a clear error', () => {
            setup();
            randomizeVariables(
              instance.trainable().map((t) => t.variable),
              21,
            );
            const saved = instance.state();
            const y = layerOutput(layer, input);
            randomizeVariables(
              instance.trainable().map((t) => t.variable),
              22,
            );
            instance.loadState(saved);
            const restored = layerOutput(layer, input);
            expect(maxAbsDiff(restored, y)).toBe(0);

            const keys = Object.keys(saved);
            const missing = { ...saved };
            delete missing[keys[0]];
            expect(() => instance.loadState(missing)).toThrow(new RegExp(`missing.*${escapeRegex(keys[0])}`));
            const wrong = tf.zeros([saved[keys[0]].shape[0] + 1, 2]);
            expect(() => instance.loadState({ ...saved, [keys[0]]: wrong })).toThrow(
              new RegExp(`${escapeRegex(keys[0])}.*shape`),
            );
            const extra = tf.zeros([1]);
            expect(() => instance.loadState({ ...saved, 'nope.weight': extra })).toThrow(
              /unexpected "nope.weight"/,
            );
            tf.dispose([...Object.values(saved), y, restored, wrong, extra]);
          });

          test('forward leaves no tensors behind', () => {
            setup();
            const first = layerOutput(layer, input);
            first.dispose();
            const count = tf.memory().numTensors;
            const y = layerOutput(layer, input);
            y.dispose();
            expect(tf.memory().numTensors).toBe(count);
          });
        });
      });
    }
  });
}
