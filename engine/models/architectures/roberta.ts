import * as tf from '@tensorflow/tfjs-core';
import { adaptable } from '../spec.ts';
import { encoderLike } from './bert.ts';

/**
 * RoBERTa (`RobertaForSequenceClassification`): positions count real tokens from padding_idx + 1, and the
 * `classifier` is a container (dense + tanh + out_proj). PEFT's all-linear excludes only a module named
 * exactly `classifier`, so its inner Linear layers stay eligible.
 */
export const roberta = encoderLike('Roberta', {
  modelType: 'roberta',
  defaultPadTokenId: 1,
  positionEmbeddingsLast: true,
  headModules(a) {
    const d = a.hiddenSize;
    return [
      adaptable('classifier.dense', 'Linear', [d, d], true),
      adaptable('classifier.out_proj', 'Linear', [a.numLabels ?? 2, d], true),
    ];
  },
  positions(a, inputIds) {
    const [, t] = inputIds.shape;
    // numbered from the ids (as transformers does), so padding keeps position padding_idx
    const pad = a.padTokenId ?? 1;
    if (t + pad >= a.maxPositions) {
      throw new Error(`sequence of ${t} tokens exceeds max_position_embeddings of this RoBERTa model`);
    }
    const real = tf.cast(tf.notEqual(inputIds, pad), 'int32');
    return tf.add(tf.mul(tf.cumsum(real, 1), real), tf.scalar(pad, 'int32')) as tf.Tensor2D;
  },
  classify(_a, w) {
    const dense = w.layer('classifier.dense');
    const out = w.layer('classifier.out_proj');
    return (first, ctx) => out.forward(tf.tanh(dense.forward(first, ctx)) as tf.Tensor2D, ctx);
  },
  maxTokens: (a) => a.maxPositions - 2,
});
