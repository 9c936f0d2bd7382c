import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { attachAdapter } from '../adapters/index.ts';
import { FrozenWeight } from '../backends/frozen.ts';
import { setBf16Kernel } from '../backends/native/bf16.ts';
import { randomValues } from '../backends/parity.ts';
import { useTestBackend } from '../backends/testing.ts';
import { AdaptableLayer, trainingContext } from '../models/layers.ts';
import { loadModel } from '../models/load.ts';
import { weightedTokenNll } from '../models/ops.ts';
import type { Batch, LoadedModel } from '../models/types.ts';
import { bf16ToF32, f32ToBf16 } from '../safetensors/dtypes.ts';
import { causalLmLossOfModel, causalLmLossSum, fusedHeadNll } from './loss.ts';
import { variablesByBlock } from './trainer.ts';

/**
 * The memory-saving paths of a causal-LM step give the loss and the gradients of the plain one: the chunked loss
 * (a frozen head's gradient taken in its forward pass, Gemma 2's final soft-cap included; an adapted head
 * recomputed per chunk) and per-block activation checkpointing (with LoRA dropout, so masks must replay).
 */

const FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures', 'transformers');

beforeAll(async () => {
  await useTestBackend();
});

function batchOf(vocab: number): { batch: Batch; lossMask: tf.Tensor2D } {
  const ids = [
    [3, 17, 5, 9, 1, 22, 8, 4],
    [11, 2, 30, 7, 6, 0, 0, 0],
  ].map((row) => row.map((v) => v % vocab));
  const mask = [
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 0, 0, 0],
  ];
  return {
    batch: { inputIds: tf.tensor2d(ids, [2, 8], 'int32'), attentionMask: tf.tensor2d(mask, [2, 8], 'int32') },
    lossMask: tf.tensor2d(
      mask.map((r) => r.map((v, j) => (j === 0 ? 0 : v))),
      [2, 8],
      'float32',
    ),
  };
}

type Path = 'plain' | 'chunked' | 'checkpointed';

function lossAndGrads(model: LoadedModel, variables: tf.Variable[], path: Path, headVars: tf.Variable[]) {
  const { batch, lossMask } = batchOf(model.spec.vocabSize);
  const ctx = trainingContext(5, 2);
  if (path === 'checkpointed') {
    const blocks = variablesByBlock(
      model,
      variables.map((v) => ({ name: v.name, variable: v, group: 'adapter' as const })),
    );
    ctx.checkpoint = { params: blocks.block };
  }
  const { value, grads } = tf.variableGrads(() => {
    if (path === 'plain')
      return causalLmLossSum(model.forward(batch, ctx) as tf.Tensor3D, batch.inputIds, lossMask);
    // a chunk of 5 rows: 16 rows make 4 chunks, the last one short
    return causalLmLossOfModel(model, batch, lossMask, ctx, headVars, 5 * model.spec.vocabSize);
  }, variables);
  const out = {
    loss: value.dataSync()[0],
    grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync().slice()])),
  };
  tf.dispose([value, ...Object.values(grads), batch.inputIds, batch.attentionMask, lossMask]);
  return out;
}

function expectSame(a: ReturnType<typeof lossAndGrads>, b: ReturnType<typeof lossAndGrads>) {
  expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(a.loss)));
  expect(Object.keys(b.grads).sort()).toEqual(Object.keys(a.grads).sort());
  let largest = 0;
  for (const [name, g] of Object.entries(a.grads)) {
    const h = b.grads[name];
    for (let i = 0; i < g.length; i++) {
      largest = Math.max(largest, Math.abs(g[i]));
      expect(Math.abs(g[i] - h[i])).toBeLessThan(1e-5 + 1e-4 * Math.abs(g[i]));
    }
  }
  // the comparison means something only if the gradients are not all zero
  expect(largest).toBeGreaterThan(1e-6);
}

describe('memory-saving causal-LM paths', () => {
  for (const name of ['gpt2', 'llama', 'gemma2']) {
    it(`${name}: chunked loss and per-block checkpointing give the plain loss and gradients`, async () => {
      const model = await loadModel(join(FIXTURES, name));
      try {
        const instance = attachAdapter(
          model,
          'lora',
          { r: 4, loraAlpha: 8, targetModules: 'all-linear', dropout: 0.2, initLoraWeights: 'gaussian' },
          { adapterName: 'default', seed: 3 },
        );
        const variables = instance.trainable().map((p) => p.variable);
        expect(model.linearHead?.()).toBeTruthy();
        const plain = lossAndGrads(model, variables, 'plain', []);
        expectSame(plain, lossAndGrads(model, variables, 'chunked', []));
        expectSame(plain, lossAndGrads(model, variables, 'checkpointed', []));
      } finally {
        model.dispose();
      }
    });
  }

  it('an adapted lm_head is recomputed chunk by chunk and its variables get the plain gradients', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    try {
      const instance = attachAdapter(
        model,
        'lora',
        { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'lm_head'], initLoraWeights: 'gaussian' },
        { adapterName: 'default', seed: 4 },
      );
      // B starts at zero: give the head's adapter a non-zero B so its gradients reach A too
      for (const p of instance.trainable()) p.variable.assign(tf.add(p.variable, 0.05));
      expect(model.linearHead?.()).toBeNull();
      const params = instance.trainable();
      const variables = params.map((p) => p.variable);
      const { head } = variablesByBlock(model, params);
      expect(head.length).toBe(2);
      expectSame(
        lossAndGrads(model, variables, 'plain', head),
        lossAndGrads(model, variables, 'chunked', head),
      );
    } finally {
      model.dispose();
    }
  });

  it('a bf16 head with a bias, streamed over vocabulary blocks, gives the plain loss and row gradient', () => {
    // the same float32 products on both sides (the bf16 kernel rounds x and p differently on each)
    setBf16Kernel(false);
    onTestFinished(() => setBf16Kernel(null));
    const [n, d, vocab] = [11, 24, 203];
    const held = f32ToBf16(randomValues(vocab * d, 21));
    const head = new AdaptableLayer(
      'lm_head',
      'Linear',
      FrozenWeight.fromValues('BF16', [vocab, d], held),
      tf.tensor1d(randomValues(vocab, 22)),
      'lm_head.weight',
    );
    const x = tf.tensor2d(
      randomValues(n * d, 23).map((v) => 4 * v),
      [n, d],
    );
    const targets = tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i * 37) % vocab),
      'int32',
    );
    const weights = tf.tensor1d(Array.from({ length: n }, (_, i) => (i === 3 ? 0 : 1 + i / n)));
    const plainLoss = (rows: tf.Tensor) =>
      weightedTokenNll(
        tf.add(tf.matMul(rows, tf.tensor2d(bf16ToF32(held), [vocab, d]), false, true), head.bias!),
        targets,
        weights,
      );
    const ctx = trainingContext(0, 0);
    // 144 elements a block: 144 / max(11 rows, 24 features) = 6 vocabulary rows a block, the last of 203 ragged
    const streamed = (rows: tf.Tensor) =>
      fusedHeadNll(rows as tf.Tensor2D, { layer: head, softcap: null }, targets, weights, 1, ctx, 144);
    const [a, b] = [plainLoss, streamed].map((f) => {
      const { value, grad } = tf.valueAndGrad(f)(x);
      return { loss: value.dataSync()[0], grad: grad.dataSync().slice() };
    });
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-4 * Math.abs(a.loss));
    for (let i = 0; i < a.grad.length; i++) expect(Math.abs(a.grad[i] - b.grad[i])).toBeLessThan(1e-5);
    tf.dispose([x, targets, weights, head.bias!]);
    head.weight.dispose();
  });
});
