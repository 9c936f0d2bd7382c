import * as tf from '@tensorflow/tfjs-core';
import { padBatch } from '../data/batches.ts';
import type { EncodedExample } from '../data/tokenize.ts';
import { generateGreedyBatch } from '../models/generate.ts';
import { inferenceContext } from '../models/layers.ts';
import type { StudioTokenizer } from '../models/tokenizer.ts';
import type { LoadedModel, TaskKind } from '../models/types.ts';
import { batchTensors, disposeBatch } from './batch.ts';
import { causalLmLossPerSequence, causalLmLossSum, classificationLossSum } from './loss.ts';
import { accuracy, binaryF1, exactMatch, normalizeAnswer } from './metrics.ts';

/** Greedy continuations of a batch of prompt ids, for exact-match evaluation. */
export type Generator = (prompts: number[][], maxNewTokens: number) => Promise<string[]>;

/** The exact-match generator of a causal LM: batched greedy decoding, stopping at the tokenizer's EOS ids. */
export function greedyGenerator(model: LoadedModel, tokenizer: StudioTokenizer): Generator {
  return async (prompts, maxNewTokens) => {
    const ids = await generateGreedyBatch(model, prompts, {
      maxNewTokens,
      stopTokenIds: tokenizer.eosTokenIds,
      padTokenId: tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0,
    });
    return ids.map((row) => tokenizer.decode(row, { skipSpecialTokens: true }));
  };
}

export interface EvaluateOptions {
  batchSize: number;
  padTokenId: number;
  generate?: Generator;
  /** Examples with an answer scored by greedy exact match and multiple-choice ranking (causal LM). */
  exactMatchExamples: number;
  maxNewTokens: number;
}

/** At most this many distinct answers make a closed answer set worth ranking (a classification posed as text). */
export const MAX_CHOICES = 32;

/**
 * Multiple-choice accuracy, as evaluation harnesses score classification posed as text: when the examples'
 * answers form a small closed set, each example's prompt is completed with every distinct answer (its tokens
 * and EOS, exactly as trained) and the answer with the highest likelihood is the prediction. Unlike greedy
 * exact match it credits a model that ranks the right label first even before it has learnt the answer format.
 * Null when the answers are not a closed set (one, or more than `MAX_CHOICES`, distinct answers).
 */
export async function choiceAccuracy(
  model: LoadedModel,
  examples: EncodedExample[],
  batchSize: number,
  padTokenId: number,
): Promise<number | null> {
  const scored = examples.filter(
    (e) =>
      e.promptIds !== undefined &&
      e.answer !== undefined &&
      !e.truncated &&
      e.promptIds.length < e.inputIds.length &&
      e.promptIds.every((id, i) => e.inputIds[i] === id),
  );
  const choices = new Map<string, number[]>();
  for (const e of scored) {
    const key = normalizeAnswer(e.answer!);
    if (!choices.has(key)) choices.set(key, e.inputIds.slice(e.promptIds!.length));
    if (choices.size > MAX_CHOICES) return null;
  }
  if (choices.size < 2) return null;
  const candidates = [...choices.entries()];
  const rows: EncodedExample[] = scored.flatMap((e) =>
    candidates.map(([, ids]) => ({
      ...e,
      inputIds: [...e.promptIds!, ...ids],
      lossMask: [...e.promptIds!.map(() => 0), ...ids.map(() => 1)],
    })),
  );
  const nll: number[] = [];
  const ctx = inferenceContext();
  for (let i = 0; i < rows.length; i += batchSize) {
    const tensors = batchTensors(padBatch(rows.slice(i, i + batchSize), padTokenId));
    try {
      const perRow = tf.tidy(() =>
        causalLmLossPerSequence(
          model.forward(tensors.batch, ctx) as tf.Tensor3D,
          tensors.batch.inputIds,
          tensors.lossMask,
        ),
      );
      nll.push(...(await perRow.data()));
      perRow.dispose();
    } finally {
      disposeBatch(tensors);
    }
  }
  let hits = 0;
  scored.forEach((e, j) => {
    let best = 0;
    for (let c = 1; c < candidates.length; c++) {
      if (nll[j * candidates.length + c] < nll[j * candidates.length + best]) best = c;
    }
    if (candidates[best][0] === normalizeAnswer(e.answer!)) hits++;
  });
  return hits / scored.length;
}

/**
 * Causal LM: token-weighted loss, perplexity = exp(loss), multiple-choice accuracy when the answers form a
 * closed set, and exact match of greedy answers when the data has answers. Classification: loss, accuracy, and
 * F1 of label 1 for binary tasks.
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
  const subset = withAnswers.slice(0, opts.exactMatchExamples);
  if (subset.length === 0) return metrics;
  const choice = await choiceAccuracy(model, subset, opts.batchSize, opts.padTokenId);
  if (choice !== null) metrics.choiceAccuracy = choice;
  if (opts.generate) {
    let hits = 0;
    for (let i = 0; i < subset.length; i += opts.batchSize) {
      const chunk = subset.slice(i, i + opts.batchSize);
      const texts = await opts.generate(
        chunk.map((e) => e.promptIds!),
        opts.maxNewTokens,
      );
      texts.forEach((text, j) => {
        if (exactMatch(text, chunk[j].answer!)) hits++;
      });
    }
    metrics.exactMatch = hits / subset.length;
  }
  return metrics;
}
