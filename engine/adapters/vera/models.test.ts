import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { loadModel } from '../../models/index.ts';
import { inferenceContext, trainingContext } from '../../models/layers.ts';
import type { Batch, LoadedModel } from '../../models/types.ts';
import { attachAdapter, detachAdapter, mergeAdapter, unmergeAdapter } from '../attach.ts';
import { maxAbs, maxAbsDiff, randomizeVariables } from '../testing.ts';

/** The four methods of this folder group on the fixture models: Linear (llama, roberta) and Conv1D (gpt2). */

const FIXTURES = 'engine/models/fixtures';

const cases: [string, string, Record<string, unknown>][] = [
  ['llama', 'tlora', { r: 4 }],
  ['gpt2', 'tlora', { r: 4, dropout: 0.1 }],
  ['llama', 'tinylora', { r: 2, u: 8, weightTying: 0.5 }],
  ['gpt2', 'tinylora', { r: 2, u: 8 }],
  ['roberta', 'tinylora', { r: 2, u: 8, targetModules: ['query', 'value', 'word_embeddings'] }],
  ['llama', 'vera', { r: 8 }],
  ['gpt2', 'vera', { r: 8, targetModules: ['c_attn', 'c_proj'] }],
  ['llama', 'loraxs', { r: 4, alpha: 8, initStd: 0 }],
  // R ~ N(0, 1e-5): LoRA-XS starts close to, not exactly at, the base model.
  ['gpt2', 'loraxs', { r: 4 }],
];

function batchOf(model: LoadedModel): Batch {
  const vocab = model.spec.vocabSize;
  const ids = Array.from({ length: 2 * 6 }, (_, i) => (i * 37 + 5) % vocab);
  return {
    inputIds: tf.tensor2d(ids, [2, 6], 'int32'),
    attentionMask: tf.ones([2, 6], 'int32') as tf.Tensor2D,
  };
}

beforeAll(async () => {
  await useTestBackend();
});

describe.each(cases)('%s + %s %j', (fixture, method, config) => {
  it('attaches as a no-op, changes outputs once trained, merges and detaches cleanly, and trains', async () => {
    const model = await loadModel(join(FIXTURES, fixture));
    const batch = batchOf(model);
    const base = model.forward(batch, inferenceContext());
    const instance = attachAdapter(model, method, config, { seed: 3 });
    expect(instance.layers.size).toBeGreaterThan(0);
    const initial = model.forward(batch, inferenceContext());
    const exactNoOp = method !== 'loraxs' || config.initStd === 0;
    expect(maxAbsDiff(initial, base)).toBeLessThan((exactNoOp ? 1e-4 : 1e-2) * Math.max(1, maxAbs(base)));

    const trainable = instance.trainable();
    randomizeVariables(
      trainable.map((t) => t.variable),
      5,
      0.5,
    );
    const adapted = model.forward(batch, inferenceContext());
    expect(maxAbsDiff(adapted, base)).toBeGreaterThan(1e-4);
    mergeAdapter(model, 'default');
    const merged = model.forward(batch, inferenceContext());
    expect(maxAbsDiff(merged, adapted)).toBeLessThan(1e-3 * Math.max(1, maxAbs(adapted)));
    unmergeAdapter(model, 'default');

    // A few Adam steps on a next-token-like objective reduce the loss (dropout active).
    const target = tf.randomNormal(adapted.shape, 0, 1, 'float32', 9);
    const optimizer = tf.train.adam(0.02);
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const cost = optimizer.minimize(
        () => tf.mean(tf.square(tf.sub(model.forward(batch, trainingContext(1, step)), target))) as tf.Scalar,
        true,
        trainable.map((t) => t.variable),
      )!;
      losses.push(cost.dataSync()[0]);
      cost.dispose();
    }
    optimizer.dispose();
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);

    detachAdapter(model, 'default');
    const after = model.forward(batch, inferenceContext());
    expect(maxAbsDiff(after, base)).toBeLessThan(1e-5 * Math.max(1, maxAbs(base)));
    tf.dispose([base, initial, adapted, merged, after, target, batch.inputIds, batch.attentionMask]);
    model.dispose();
  });
});
