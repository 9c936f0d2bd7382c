import * as tf from '@tensorflow/tfjs-core';
import { weightedTokenNll } from '../models/ops.ts';

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
    const next = (x: tf.Tensor2D, dtype: 'int32' | 'float32') =>
      tf.reshape(tf.concat([tf.cast(tf.slice(x, [0, 1], [b, t - 1]), dtype), tf.zeros([b, 1], dtype)], 1), [
        b * t,
      ]) as tf.Tensor1D;
    return weightedTokenNll(
      tf.reshape(logits, [b * t, v]) as tf.Tensor2D,
      next(inputIds, 'int32'),
      next(lossMask, 'float32'),
    );
  });
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
