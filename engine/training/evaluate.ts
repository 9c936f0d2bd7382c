import * as tf from '@tensorflow/tfjs-core';
import { padBatch } from '../data/batches.ts';
import type { EncodedExample } from '../data/tokenize.ts';
import { inferenceContext } from '../models/layers.ts';
import type { LoadedModel, TaskKind } from '../models/types.ts';
import { batchTensors, disposeBatch } from './batch.ts';
import { causalLmLossSum, classificationLossSum } from './loss.ts';
import { accuracy, binaryF1, exactMatch } from './metrics.ts';

/** Greedy continuation of prompt ids, for exact-match evaluation. */
export type Generator = (promptIds: number[], maxNewTokens: number) => Promise<string>;

export interface EvaluateOptions {
  batchSize: number;
  padTokenId: number;
  generate?: Generator;
  /** Examples with an answer scored by greedy exact match (causal LM). */
  exactMatchExamples: number;
  maxNewTokens: number;
}

/**
 * Causal LM: token-weighted loss, perplexity = exp(loss), and exact match of greedy answers when the data has
 * answers. Classification: loss, accuracy, and F1 of label 1 for binary tasks.
 */
export async function evaluateExamples(
  model: LoadedModel,
  task: TaskKind,
  examples: EncodedExample[],
  opts: EvaluateOptions,
): Promise<Record<string, number>> {
  let lossSum = 0;
  let targets = 0;
  const preds: number[] = [];
  const gold: number[] = [];
  const ctx = inferenceContext();
  for (let i = 0; i < examples.length; i += opts.batchSize) {
    const padded = padBatch(examples.slice(i, i + opts.batchSize), opts.padTokenId);
    const tensors = batchTensors(padded);
    try {
      const [loss, argmax] = tf.tidy(() => {
        const logits = model.forward(tensors.batch, ctx);
        if (task === 'seq-cls') {
          return [classificationLossSum(logits as tf.Tensor2D, tensors.labels!), tf.argMax(logits, 1)];
        }
        return [causalLmLossSum(logits as tf.Tensor3D, tensors.batch.inputIds, tensors.lossMask), null];
      });
      lossSum += (await loss.data())[0];
      loss.dispose();
      if (argmax) {
        preds.push(...(await argmax.data()));
        argmax.dispose();
        gold.push(...padded.labels!);
      }
      targets += padded.targetCount;
    } finally {
      disposeBatch(tensors);
    }
  }
  const loss = lossSum / Math.max(1, targets);
  if (task === 'seq-cls') {
    const metrics: Record<string, number> = { loss, accuracy: accuracy(preds, gold) };
    if ((model.spec.numLabels ?? 0) === 2) metrics.f1 = binaryF1(preds, gold);
    return metrics;
  }
  const metrics: Record<string, number> = { loss, perplexity: Math.exp(loss) };
  const withAnswers = examples.filter((e) => e.promptIds !== undefined && e.answer !== undefined);
  if (opts.generate && opts.exactMatchExamples > 0 && withAnswers.length > 0) {
    const subset = withAnswers.slice(0, opts.exactMatchExamples);
    let hits = 0;
    for (const e of subset) {
      if (exactMatch(await opts.generate(e.promptIds!, opts.maxNewTokens), e.answer!)) hits++;
    }
    metrics.exactMatch = hits / subset.length;
  }
  return metrics;
}
