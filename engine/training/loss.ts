import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from '../models/layers.ts';
import { weightedTokenNll } from '../models/ops.ts';
import { chunkedTokenNll } from '../models/recompute.ts';
import type { Batch, LinearHead, LoadedModel } from '../models/types.ts';
import { headBlockRows, LOGIT_CHUNK_ELEMENTS } from './logit-blocks.ts';

/** Σ of −log p(target) over rows; logits [N, C], targets int32 [N]. Gathers from the flat logits so no [N, C] one-hot is built. */
function crossEntropyRows(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [n, c] = logits.shape;
  const lse = tf.logSumExp(logits, 1);
  const flatIndex = tf.add(
    tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(c, 'int32')),
    tf.cast(targets, 'int32'),
  );
  const picked = tf.gather(tf.reshape(logits, [n * c]), flatIndex);
  return tf.sub(lse, picked) as tf.Tensor1D;
}

/** Next-token targets and weights of every position [B·T] (the last position has weight 0). */
function nextTokens(
  inputIds: tf.Tensor2D,
  lossMask: tf.Tensor2D,
): { targets: tf.Tensor1D; weights: tf.Tensor1D } {
  const [b, t] = inputIds.shape;
  const next = (x: tf.Tensor2D, dtype: 'int32' | 'float32') =>
    tf.reshape(tf.concat([tf.cast(tf.slice(x, [0, 1], [b, t - 1]), dtype), tf.zeros([b, 1], dtype)], 1), [
      b * t,
    ]) as tf.Tensor1D;
  return { targets: next(inputIds, 'int32'), weights: next(lossMask, 'float32') };
}

/**
 * Summed token cross entropy of a causal LM: the logits at position t−1 predict the token at t, counted where
 * `lossMask[t]` is 1. Summing (not averaging) lets gradient accumulation divide by the total target count.
 * Every position is scored against the next token (the last with weight 0) so the [B·T, vocab] logits are
 * used in place, not sliced into a copy.
 */
export function causalLmLossSum(
  logits: tf.Tensor3D,
  inputIds: tf.Tensor2D,
  lossMask: tf.Tensor2D,
): tf.Scalar {
  return tf.tidy(() => {
    const [b, t, v] = logits.shape;
    if (t < 2) return tf.scalar(0);
    const { targets, weights } = nextTokens(inputIds, lossMask);
    return weightedTokenNll(tf.reshape(logits, [b * t, v]) as tf.Tensor2D, targets, weights);
  });
}

/**
 * `causalLmLossSum` of a model's output without its whole [B·T, vocab] logits: when they exceed
 * `LOGIT_CHUNK_ELEMENTS`, the head runs in blocks. A head that is one adapter-free module (the usual case) takes
 * its gradient in the same pass (`fusedHeadNll`); any other head runs over row chunks and is recomputed chunk by
 * chunk in the backward pass, with `headParams` the trainable variables it reads.
 */
export function causalLmLossOfModel(
  model: LoadedModel,
  batch: Batch,
  lossMask: tf.Tensor2D,
  ctx: ForwardContext,
  headParams: tf.Variable[] = [],
  chunkElements = LOGIT_CHUNK_ELEMENTS,
): tf.Scalar {
  const [b, t] = batch.inputIds.shape;
  const vocab = model.spec.vocabSize;
  if (t < 2) return tf.scalar(0);
  if (b * t * vocab <= chunkElements) {
    return tf.tidy(() => causalLmLossSum(model.forward(batch, ctx) as tf.Tensor3D, batch.inputIds, lossMask));
  }
  return tf.tidy(() => {
    const rows = model.hidden(batch, ctx);
    const { targets, weights } = nextTokens(batch.inputIds, lossMask);
    const chunk = Math.max(1, Math.floor(chunkElements / vocab));
    const linear = model.linearHead?.() ?? null;
    if (linear) return fusedHeadNll(rows, linear, targets, weights, chunk, ctx, chunkElements);
    return chunkedTokenNll(rows, (r) => model.head(r, ctx), targets, weights, chunk, headParams);
  });
}

/**
 * Σ w·(−log softmax(head(rows))[target]) for a head that is one frozen Linear module, with d/d rows computed in
 * the forward pass itself and only those [N, d] kept: nothing is recomputed, and no [N, vocab] tensor outlives
 * its block. The gradient is linear in the upstream scalar, which the backward pass only scales by. Without a
 * soft-cap it streams over blocks of vocabulary rows (`streamedHeadNll`); with one it runs `chunk` rows at a time.
 */
export function fusedHeadNll(
  rows: tf.Tensor2D,
  head: LinearHead,
  targets: tf.Tensor1D,
  weights: tf.Tensor1D,
  chunk: number,
  ctx: ForwardContext,
  chunkElements = LOGIT_CHUNK_ELEMENTS,
): tf.Scalar {
  const { layer, softcap } = head;
  if (layer.kind !== 'Linear')
    throw new Error(`fused head loss: ${layer.name} is a ${layer.kind}, not a Linear`);
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = args[0] as tf.Tensor2D;
    const { loss, dRows } =
      softcap === null
        ? streamedHeadNll(x, layer, targets, weights, chunkElements)
        : cappedHeadNll(x, layer, softcap, targets, weights, chunk, ctx);
    save([dRows]);
    return { value: loss, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(saved[0], dy) };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(rows) as tf.Scalar;
}

/**
 * The head loss and its gradient in one pass over blocks of vocabulary rows, each read (and, for a bf16/f16
 * weight, widened) once: per block the logits x·W_bᵀ [N, block], a running max m and sum of exponentials l per
 * row (online softmax), and Σ_b exp(z_b − m)·W_b accumulated beside them and rescaled as m grows, as flash
 * attention does for softmax·V. Then d/d rows = w·(softmax·W − W[target]). Row chunks instead widened the whole
 * head twice per chunk: Qwen2.5-0.5B at 4 × 256 (19 chunks of 55 rows) widened 5.2 G values per step.
 */
function streamedHeadNll(
  x: tf.Tensor2D,
  layer: LinearHead['layer'],
  targets: tf.Tensor1D,
  weights: tf.Tensor1D,
  chunkElements: number,
): { loss: tf.Scalar; dRows: tf.Tensor2D } {
  const [n, d] = x.shape;
  const vocab = layer.weight.shape[0];
  const block = headBlockRows(n, d, vocab, chunkElements);
  let m = tf.fill([n, 1], Number.NEGATIVE_INFINITY) as tf.Tensor2D;
  let l = tf.zeros([n, 1]) as tf.Tensor2D;
  let acc = tf.zeros([n, d]) as tf.Tensor2D;
  for (let v0 = 0; v0 < vocab; v0 += block) {
    const len = Math.min(block, vocab - v0);
    const w = layer.weight.rowBlock(v0, len);
    const next = tf.tidy(() => {
      let z = w.matmul(x, true);
      if (layer.bias) z = tf.add(z, tf.slice(layer.bias, [v0], [len]));
      const mNew = tf.maximum(m, tf.max(z, 1, true)) as tf.Tensor2D;
      const rescale = tf.exp(tf.sub(m, mNew));
      const p = tf.exp(tf.sub(z, mNew)) as tf.Tensor2D;
      return {
        m: mNew,
        l: tf.add(tf.mul(l, rescale), tf.sum(p, 1, true)) as tf.Tensor2D,
        acc: tf.add(tf.mul(acc, rescale), w.matmul(p, false)) as tf.Tensor2D,
      };
    });
    w.dispose();
    tf.dispose([m, l, acc]);
    ({ m, l, acc } = next);
  }
  const result = tf.tidy(() => {
    const picked = layer.weight.gather(targets);
    let targetLogit = tf.sum(tf.mul(x, picked), 1);
    if (layer.bias) targetLogit = tf.add(targetLogit, tf.gather(layer.bias, targets));
    const lse = tf.reshape(tf.add(m, tf.log(l)), [n]);
    const w = tf.reshape(weights, [n, 1]);
    return {
      loss: tf.sum(tf.mul(tf.sub(lse, targetLogit), weights)) as tf.Scalar,
      dRows: tf.mul(tf.sub(tf.div(acc, l), picked), w) as tf.Tensor2D,
    };
  });
  tf.dispose([m, l, acc]);
  return result;
}

/** The soft-capped head (cap·tanh(z/cap)) `chunk` rows at a time, its gradient through the cap. */
function cappedHeadNll(
  x: tf.Tensor2D,
  layer: LinearHead['layer'],
  softcap: number,
  targets: tf.Tensor1D,
  weights: tf.Tensor1D,
  chunk: number,
  ctx: ForwardContext,
): { loss: tf.Scalar; dRows: tf.Tensor2D } {
  const [n, d] = x.shape;
  let total = 0;
  const grads: tf.Tensor2D[] = [];
  for (let start = 0; start < n; start += chunk) {
    const len = Math.min(chunk, n - start);
    const part = tf.tidy(() => {
      const xs = tf.slice(x, [start, 0], [len, d]) as tf.Tensor2D;
      const ids = tf.slice(targets, [start], [len]) as tf.Tensor1D;
      const w = tf.slice(weights, [start], [len]) as tf.Tensor1D;
      const z = layer.forward(xs, ctx);
      const vocab = z.shape[1];
      const capped = tf.mul(tf.tanh(tf.div(z, softcap)), softcap) as tf.Tensor2D;
      const lse = tf.logSumExp(capped, 1, true);
      const flat = tf.add(
        tf.mul(tf.range(0, len, 1, 'int32'), tf.scalar(vocab, 'int32')),
        tf.cast(ids, 'int32'),
      );
      const picked = tf.gather(tf.reshape(capped, [len * vocab]), flat);
      const loss = tf.sum(tf.mul(tf.sub(tf.reshape(lse, [len]), picked), w));
      // d loss / d logits = w·(softmax − onehot), through cap·tanh(z/cap): 1 − tanh²
      const probs = tf.mul(tf.exp(tf.sub(capped, lse)), tf.reshape(w, [len, 1]));
      const hits = tf.reshape(tf.scatterND(tf.reshape(flat, [len, 1]), w, [len * vocab]), [len, vocab]);
      const dz = tf.mul(tf.sub(probs, hits), tf.sub(1, tf.square(tf.div(capped, softcap)))) as tf.Tensor2D;
      return { loss, dx: layer.weight.matmul(dz, false) };
    });
    total += part.loss.dataSync()[0];
    part.loss.dispose();
    grads.push(part.dx);
  }
  const dRows = grads.length === 1 ? grads[0] : (tf.concat(grads, 0) as tf.Tensor2D);
  if (grads.length > 1) tf.dispose(grads);
  return { loss: tf.scalar(total), dRows };
}

/**
 * Per-sequence summed cross entropy of a causal LM ([B]): −log p of each row's masked tokens, for scoring
 * candidate continuations. Evaluation only (no custom gradient).
 */
export function causalLmLossPerSequence(
  logits: tf.Tensor3D,
  inputIds: tf.Tensor2D,
  lossMask: tf.Tensor2D,
): tf.Tensor1D {
  return tf.tidy(() => {
    const [b, t, v] = logits.shape;
    if (t < 2) return tf.zeros([b]) as tf.Tensor1D;
    const targets = tf.reshape(tf.slice(inputIds, [0, 1], [b, t - 1]), [b * (t - 1)]) as tf.Tensor1D;
    const rows = tf.reshape(tf.slice(logits, [0, 0, 0], [b, t - 1, v]), [b * (t - 1), v]) as tf.Tensor2D;
    const nll = tf.reshape(crossEntropyRows(rows, targets), [b, t - 1]);
    return tf.sum(tf.mul(nll, tf.slice(lossMask, [0, 1], [b, t - 1])), 1) as tf.Tensor1D;
  });
}

/** Summed cross entropy of a classifier: logits [B, C], labels int32 [B]. */
export function classificationLossSum(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(crossEntropyRows(logits, labels)));
}
