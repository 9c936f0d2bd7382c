import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBf16Kernel } from '../backends/native/bf16.ts';
import { useTestBackend } from '../backends/testing.ts';
import { inferenceContext } from './layers.ts';
import { loadModel } from './load.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');

interface Expected {
  task: 'causal-lm' | 'seq-cls';
  input_ids: number[][];
  attention_mask: number[][];
  logits_shape: number[];
  logits: number[];
}

function expectedOf(name: string): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));
}

/** Largest |actual − expected| over positions that are real tokens, relative to the largest |expected|. */
function relativeError(actual: Float32Array, exp: Expected): number {
  const [b, t] = [exp.input_ids.length, exp.input_ids[0].length];
  const perRow = exp.task === 'causal-lm' ? exp.logits_shape[2] : exp.logits_shape[1];
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < (exp.task === 'causal-lm' ? t : 1); j++) {
      if (exp.task === 'causal-lm' && exp.attention_mask[i][j] === 0) continue;
      const base = exp.task === 'causal-lm' ? (i * t + j) * perRow : i * perRow;
      for (let v = 0; v < perRow; v++) {
        maxDiff = Math.max(maxDiff, Math.abs(actual[base + v] - exp.logits[base + v]));
        maxRef = Math.max(maxRef, Math.abs(exp.logits[base + v]));
      }
    }
  }
  return maxDiff / maxRef;
}

const NAMES = [
  'gpt2',
  'gpt2-cls',
  'llama',
  'llama-cls',
  'llama-rope-linear',
  'llama-sharded',
  'llama-bf16',
  'qwen2',
  'mistral',
  'bert',
  'roberta',
];

describe('logits match the numpy reference (fixed random weights, padded batch)', () => {
  beforeAll(async () => {
    await useTestBackend();
    // float32 products of bf16-stored weights (the reference's); the bf16 kernel is checked against transformers
    setBf16Kernel(false);
  });
  afterAll(() => setBf16Kernel(null));

  for (const name of NAMES) {
    it(name, async () => {
      const exp = expectedOf(name);
      const model = await loadModel(join(FIXTURES, name));
      const before = tf.memory().numTensors;
      const logits = tf.tidy(() =>
        model.forward(
          {
            inputIds: tf.tensor2d(exp.input_ids, undefined, 'int32'),
            attentionMask: tf.tensor2d(exp.attention_mask, undefined, 'int32'),
          },
          inferenceContext(),
        ),
      );
      expect(logits.shape).toEqual(exp.logits_shape);
      expect(model.spec.task).toBe(exp.task);
      const err = relativeError((await logits.data()) as Float32Array, exp);
      logits.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(err).toBeLessThan(1e-4);
      model.dispose();
    });
  }
});

describe('BERT sentence pairs', () => {
  it('token_type_ids select the segment embedding', async () => {
    await useTestBackend();
    const exp = JSON.parse(readFileSync(join(FIXTURES, 'bert', 'expected.json'), 'utf8'));
    const model = await loadModel(join(FIXTURES, 'bert'));
    const logits = tf.tidy(() =>
      model.forward(
        {
          inputIds: tf.tensor2d(exp.input_ids, undefined, 'int32'),
          attentionMask: tf.tensor2d(exp.attention_mask, undefined, 'int32'),
          tokenTypeIds: tf.tensor2d(exp.pair.token_type_ids, undefined, 'int32'),
        },
        inferenceContext(),
      ),
    );
    const err = relativeError((await logits.data()) as Float32Array, { ...exp, logits: exp.pair.logits });
    expect(err).toBeLessThan(1e-4);
    logits.dispose();
    model.dispose();
  });
});
