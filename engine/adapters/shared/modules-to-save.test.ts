import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { loadModel, readModelConfig, specFromConfig } from '../../models/index.ts';
import { inferenceContext } from '../../models/layers.ts';
import type { LoadedModel } from '../../models/types.ts';
import { attachAdapter, detachAdapter, mergeAdapter, unmergeAdapter } from '../attach.ts';
import { resolveTargets, savedModuleNames } from '../targets.ts';
import { randomizeVariables } from '../testing.ts';

const BERT = 'engine/models/fixtures/bert';
const ROBERTA = 'engine/models/fixtures/roberta';
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
const spec = async (dir: string) => specFromConfig(await readModelConfig(join(dir, 'config.json')));

describe("modules_to_save selection (PEFT's rules)", () => {
  test('a module, or a module it sits in, whose name ends with an entry; seq-cls head names may match nothing', async () => {
    const bert = await spec(BERT);
    expect(savedModuleNames(bert, ['classifier', 'score'])).toEqual(['classifier']);
    expect(savedModuleNames(bert, ['pooler.dense'])).toEqual(['bert.pooler.dense']);
    // RoBERTa's classifier is a container: both of its Linear layers are saved.
    expect(savedModuleNames(await spec(ROBERTA), ['classifier'])).toEqual([
      'classifier.dense',
      'classifier.out_proj',
    ]);
    expect(() => savedModuleNames(bert, ['clasifier'])).toThrow(
      /"clasifier" matches no module .* classifier/,
    );
    expect(() => savedModuleNames(bert, ['embeddings.LayerNorm'])).toThrow(
      /selects bert\.embeddings\.LayerNorm, a LayerNorm; only Linear, Conv1D and Embedding/,
    );
  });

  test('a module inside modules_to_save is never targeted', async () => {
    const bert = await spec(BERT);
    const names = (fields: Parameters<typeof resolveTargets>[1]) =>
      resolveTargets(bert, fields).map((t) => t.name);
    expect(names({ targetModules: ['dense'] })).toContain('bert.pooler.dense');
    expect(names({ targetModules: ['dense'], modulesToSave: ['pooler'] })).not.toContain('bert.pooler.dense');
    expect(() =>
      resolveTargets(bert, { targetModules: ['classifier'], modulesToSave: ['classifier'] }),
    ).toThrow(/no module left to adapt .*modulesToSave/);
  });
});

describe('trainable module copies', () => {
  let model: LoadedModel;
  const ids = () => tf.tensor2d([[2, 9, 14, 7]], undefined, 'int32');
  const logits = () =>
    tf.tidy(() => {
      const inputIds = ids();
      return model.forward({ inputIds, attentionMask: tf.onesLike(inputIds) }, inferenceContext()).dataSync();
    });

  beforeAll(async () => {
    await useTestBackend();
    model = await loadModel(BERT);
  });
  afterAll(() => model.dispose());

  test('the copy replaces the module while active, trains, merges and detaches without touching the base', () => {
    const head = model.layers.get('classifier')!;
    const baseWeight = head.weight.float32();
    const before = logits();
    const instance = attachAdapter(model, 'lora', {
      r: 2,
      targetModules: ['query'],
      modulesToSave: ['classifier'],
    });
    const copy = instance.savedModules!.get('classifier')!;
    expect(instance.trainable().map((t) => t.name)).toEqual(
      expect.arrayContaining(['classifier.weight', 'classifier.bias']),
    );
    expect(Object.keys(instance.state())).toEqual(
      expect.arrayContaining(['classifier.weight', 'classifier.bias']),
    );
    expect(maxAbsDiff(logits(), before)).toBe(0);

    // A head copy scaled by 3 (and its bias shifted) scales the logits as the same change to the base would.
    copy.weight.assign(tf.mul(copy.weight, 3));
    copy.bias!.assign(tf.add(copy.bias!, 0.5));
    const adapted = logits();
    const expected = tf.tidy(() => {
      const inputIds = ids();
      const w = head.weight.snapshot();
      const b = head.bias!;
      head.setLogicalWeight(tf.mul(head.logicalWeight(), 3) as tf.Tensor2D);
      head.bias = tf.add(b, 0.5) as tf.Tensor1D;
      head.activeAdapters = [];
      const out = model
        .forward({ inputIds, attentionMask: tf.onesLike(inputIds) }, inferenceContext())
        .dataSync();
      head.weight.restore(w);
      head.bias = b;
      head.activeAdapters = ['default'];
      return out;
    });
    expect(maxAbsDiff(adapted, expected)).toBeLessThan(1e-5);
    expect(maxAbsDiff(adapted, before)).toBeGreaterThan(1e-3);

    randomizeVariables(
      instance
        .trainable()
        .filter((t) => !t.name.startsWith('classifier'))
        .map((t) => t.variable),
    );
    const trained = logits();
    const state = instance.state();
    mergeAdapter(model, 'default');
    head.merge('default');
    expect(maxAbsDiff(logits(), trained)).toBeLessThan(1e-4);
    head.unmerge('default');
    unmergeAdapter(model, 'default');
    expect(maxAbsDiff(logits(), trained)).toBeLessThan(1e-5);
    expect(maxAbsDiff(head.weight.float32(), baseWeight)).toBe(0);

    detachAdapter(model, 'default');
    // LoRA's merge + unmerge of the query weights rounds; the head itself is bit-for-bit the base again.
    expect(maxAbsDiff(logits(), before)).toBeLessThan(1e-5);
    expect(head.adapters.size).toBe(0);

    const again = attachAdapter(model, 'lora', {
      r: 2,
      targetModules: ['query'],
      modulesToSave: ['classifier'],
    });
    const { 'classifier.bias': _bias, ...withoutBias } = state;
    expect(() => again.loadState(withoutBias)).toThrow(/missing "classifier\.bias" \(modulesToSave\)/);
    again.loadState(state);
    expect(maxAbsDiff(logits(), trained)).toBeLessThan(1e-5);
    detachAdapter(model, 'default');
    tf.dispose(Object.values(state));
  });
});
