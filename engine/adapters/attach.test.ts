import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import {
  attachAdapter,
  detachAdapter,
  listAdapters,
  mergeAdapter,
  setActiveAdapters,
  setAdaptersEnabled,
  unmergeAdapter,
} from './attach.ts';
import {
  baseOutput,
  denseDelta,
  fakeModel,
  layerOutput,
  maxAbsDiff,
  randomAdaptableLayer,
  randomInput,
  randomizeVariables,
} from './testing.ts';

beforeAll(async () => {
  await useTestBackend();
});

function twoLayerModel() {
  const q = randomAdaptableLayer('Linear', 6, 6, { name: 'model.layers.0.self_attn.q_proj', seed: 1 });
  const v = randomAdaptableLayer('Linear', 6, 4, { name: 'model.layers.0.self_attn.v_proj', seed: 2 });
  return { model: fakeModel([q, v]), q, v };
}

describe('several named adapters on one model', () => {
  test('active adapters add up; activation, disabling, merge and detach behave as PEFT', () => {
    const { model, q } = twoLayerModel();
    const one = attachAdapter(
      model,
      'lora',
      { r: 2, targetModules: ['q_proj', 'v_proj'] },
      { adapterName: 'one', seed: 1 },
    );
    const two = attachAdapter(
      model,
      'lora',
      { r: 3, targetModules: ['q_proj'] },
      { adapterName: 'two', seed: 2 },
    );
    randomizeVariables(
      one.trainable().map((t) => t.variable),
      5,
    );
    randomizeVariables(
      two.trainable().map((t) => t.variable),
      6,
    );
    expect(listAdapters(model).map((a) => [a.name, a.active, a.modules])).toEqual([
      ['one', false, 2],
      ['two', true, 1],
    ]);

    const x = randomInput(q, 3);
    const base = baseOutput(q, x);
    const d1 = one.layers.get(q.name)!.deltaWeight();
    const d2 = two.layers.get(q.name)!.deltaWeight();
    const only2 = layerOutput(q, x);
    const c2 = denseDelta('Linear', x, d2);
    expect(maxAbsDiff(tf.sub(only2, base), c2)).toBeLessThan(1e-4);

    setActiveAdapters(model, ['one', 'two']);
    const both = layerOutput(q, x);
    const c1 = denseDelta('Linear', x, d1);
    expect(maxAbsDiff(tf.sub(both, base), tf.add(c1, c2))).toBeLessThan(1e-4);

    setAdaptersEnabled(model, false);
    const disabled = layerOutput(q, x);
    expect(maxAbsDiff(disabled, base)).toBe(0);
    setAdaptersEnabled(model, true);

    mergeAdapter(model, 'one');
    expect(listAdapters(model).find((a) => a.name === 'one')!.merged).toBe(true);
    const mergedOut = layerOutput(q, x);
    expect(maxAbsDiff(mergedOut, both)).toBeLessThan(1e-4);
    unmergeAdapter(model, 'one');

    // Detaching a merged adapter unmerges it first, then the other adapter still works alone.
    mergeAdapter(model, 'one');
    detachAdapter(model, 'one');
    expect(listAdapters(model).map((a) => a.name)).toEqual(['two']);
    expect(q.adapters.has('one')).toBe(false);
    expect(q.activeAdapters).toEqual(['two']);
    const after = layerOutput(q, x);
    expect(maxAbsDiff(after, only2)).toBeLessThan(1e-4);

    expect(() => setActiveAdapters(model, ['one'])).toThrow(/no adapter named "one".*attached: two/);
    expect(() => attachAdapter(model, 'lora', {}, { adapterName: 'two' })).toThrow(
      /already has an adapter named "two"/,
    );
    expect(() => attachAdapter(model, 'lora', {}, { adapterName: 'a.b' })).toThrow(/may contain only/);
    detachAdapter(model, 'two');
    tf.dispose([x, base, d1, d2, only2, c2, both, c1, disabled, mergedOut, after]);
    model.dispose();
  });

  test('detaching a PiSSA adapter restores the base weight; a failed attach leaves the model untouched', () => {
    const { model, q, v } = twoLayerModel();
    const wq = q.weight.toTensor();
    attachAdapter(model, 'lora', { r: 2, initLoraWeights: 'pissa', targetModules: ['q_proj'] });
    expect(maxAbsDiff(q.weight.toTensor(), wq)).toBeGreaterThan(1e-3);
    detachAdapter(model, 'default');
    expect(maxAbsDiff(q.weight.toTensor(), wq)).toBeLessThan(1e-5);

    // r = 5 fits q_proj (6 × 6) but not v_proj (4 × 6): q_proj's residual must be undone.
    const wv = v.weight.toTensor();
    const before = tf.memory().numTensors;
    expect(() =>
      attachAdapter(model, 'lora', { r: 5, initLoraWeights: 'pissa', targetModules: ['q_proj', 'v_proj'] }),
    ).toThrow(/needs r ≤ min\(out, in\) = 4/);
    expect(tf.memory().numTensors).toBe(before);
    expect(maxAbsDiff(q.weight.toTensor(), wq)).toBeLessThan(1e-5);
    expect(maxAbsDiff(v.weight.toTensor(), wv)).toBe(0);
    expect(q.adapters.size).toBe(0);
    expect(listAdapters(model)).toEqual([]);
    tf.dispose([wq, wv]);
    model.dispose();
  });
});
