import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import type { EncodedExample } from '../data/tokenize.ts';
import { inferenceContext, loadModel } from '../models/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { choiceAccuracy } from './evaluate.ts';

let model: LoadedModel;

beforeAll(async () => {
  await useTestBackend();
  model = await loadModel(join(import.meta.dirname, '..', 'models', 'fixtures', 'llama'));
});

afterAll(() => model.dispose());

const ANSWERS: Record<string, number[]> = {
  ' law': [7, 3, 0],
  ' history': [11, 0],
  ' letters': [5, 9, 2, 0],
};

/** A prompt/completion example as encodeExample builds it: prompt ids, then the answer's ids ending in EOS. */
function example(promptIds: number[], answer: string): EncodedExample {
  const answerIds = ANSWERS[answer];
  return {
    inputIds: [...promptIds, ...answerIds],
    lossMask: [...promptIds.map(() => 0), ...answerIds.map(() => 1)],
    file: 'validation.jsonl',
    line: 1,
    truncated: false,
    prompt: 'p',
    promptIds,
    answer,
  };
}

/** −log p(answer | prompt) from one unpadded forward pass and a log-softmax written out in float64. */
function referenceNll(promptIds: number[], answerIds: number[]): number {
  const ids = [...promptIds, ...answerIds];
  const logits = tf.tidy(() =>
    (
      model.forward(
        {
          inputIds: tf.tensor2d(ids, [1, ids.length], 'int32'),
          attentionMask: tf.ones([1, ids.length], 'int32') as tf.Tensor2D,
        },
        inferenceContext(),
      ) as tf.Tensor3D
    ).arraySync(),
  )[0];
  let nll = 0;
  for (let t = promptIds.length; t < ids.length; t++) {
    const row = logits[t - 1];
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    nll += lse - row[ids[t]];
  }
  return nll;
}

describe('multiple-choice accuracy over a closed answer set', () => {
  it('picks the answer with the highest likelihood, as unbatched float64 scoring does, at any batch size', async () => {
    const prompts = [
      [1, 4, 6, 8],
      [2, 2, 13, 4, 9, 10],
      [3, 17],
      [12, 5, 5, 6, 1, 1, 8],
      [19, 4, 2],
      [6, 6, 6, 14, 15],
    ];
    const names = Object.keys(ANSWERS);
    // gold is the reference's favourite for the first half and another answer for the rest: exactly 0.5
    const examples = prompts.map((p, i) => {
      const nll = names.map((name) => referenceNll(p, ANSWERS[name]));
      const best = nll.indexOf(Math.min(...nll));
      return example(p, names[i < prompts.length / 2 ? best : (best + 1) % names.length]);
    });
    for (const batchSize of [1, 4, 64]) {
      expect(await choiceAccuracy(model, examples, batchSize, 1)).toBe(0.5);
    }
  });

  it('is null without a closed set: a single answer, or more distinct answers than choices allowed', async () => {
    const one = [example([1, 2], ' law'), example([3, 4], ' law')];
    expect(await choiceAccuracy(model, one, 8, 1)).toBeNull();
    const many = Array.from({ length: 40 }, (_, i) => ({
      ...example([1, 2], ' law'),
      inputIds: [1, 2, 20 + i, 0],
      lossMask: [0, 0, 1, 1],
      answer: ` word${i}`,
    }));
    expect(await choiceAccuracy(model, many, 8, 1)).toBeNull();
  });
});
