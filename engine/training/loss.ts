import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from '../models/layers.ts';
import { weightedTokenNll } from '../models/ops.ts';
import { chunkedTokenNll } from '../models/recompute.ts';
import type { Batch, LinearHead, LoadedModel } from '../models/types.ts';

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
 * Logits of at most this many elements (32 MiB of float32) exist at once in a causal-LM loss: with a 151,936-token
 * vocabulary one 4 × 128 batch has 311 MB of logits, and as much again for their gradient.
 */
export const LOGIT_CHUNK_ELEMENTS = 1 << 23;

/**
 * `causalLmLossSum` of a model's output without its whole [B·T, vocab] logits: when they exceed
 * `LOGIT_CHUNK_ELEMENTS`, the head runs over row chunks. A head that is one adapter-free module (the usual case)
 * takes its gradient in the same pass (`fusedHeadNll`); any other head is recomputed chunk by chunk in the backward
 * pass, with `headParams` the trainable variables it reads.
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
    if (linear) return fusedHeadNll(rows, linear, targets, weights, chunk, ctx);
    return chunkedTokenNll(rows, (r) => model.head(r, ctx), targets, weights, chunk, headParams);
  });
}

/**
 * Σ w·(−log softmax(head(rows))[target]) for a head that is one frozen module and a soft-cap, `chunk` rows at a
 * time, with d/d rows computed in the forward pass itself (w·(softmax − onehot) through the soft-cap and the
 * module's transposed product) and only those [N, d] kept: nothing is recomputed, and no [N, vocab] tensor
 * outlives its chunk. The gradient is linear in the upstream scalar, which the backward pass only scales by.
 */
export function fusedHeadNll(
  rows: tf.Tensor2D,
  head: LinearHead,
  targets: tf.Tensor1D,
  weights: tf.Tensor1D,
  chunk: number,
  ctx: ForwardContext,
): tf.Scalar {
  const [n, d] = rows.shape;
  const { layer, softcap } = head;
  if (layer.kind !== 'Linear')
    throw new Error(`fused head loss: ${layer.name} is a ${layer.kind}, not a Linear`);
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = args[0] as tf.Tensor2D;
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
        const capped = softcap === null ? z : (tf.mul(tf.tanh(tf.div(z, softcap)), softcap) as tf.Tensor2D);
        const lse = tf.logSumExp(capped, 1, true);
        const flat = tf.add(
          tf.mul(tf.range(0, len, 1, 'int32'), tf.scalar(vocab, 'int32')),
          tf.cast(ids, 'int32'),
        );
        const picked = tf.gather(tf.reshape(capped, [len * vocab]), flat);
        const loss = tf.sum(tf.mul(tf.sub(tf.reshape(lse, [len]), picked), w));
        // d loss / d logits = w·(softmax − onehot)
        const probs = tf.mul(tf.exp(tf.sub(capped, lse)), tf.reshape(w, [len, 1]));
        const hits = tf.reshape(tf.scatterND(tf.reshape(flat, [len, 1]), w, [len * vocab]), [len, vocab]);
        let dz = tf.sub(probs, hits) as tf.Tensor2D;
        // through cap·tanh(z/cap): 1 − tanh²
        if (softcap !== null) dz = tf.mul(dz, tf.sub(1, tf.square(tf.div(capped, softcap)))) as tf.Tensor2D;
        return { loss, dx: layer.weight.matmul(dz, false) };
      });
      total += part.loss.dataSync()[0];
      part.loss.dispose();
      grads.push(part.dx);
    }
    const dRows = grads.length === 1 ? grads[0] : (tf.concat(grads, 0) as tf.Tensor2D);
    if (grads.length > 1) tf.dispose(grads);
    save([dRows]);
    return { value: tf.scalar(total), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(saved[0], dy) };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(rows) as tf.Scalar;
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
