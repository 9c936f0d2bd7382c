import * as tf from '@tensorflow/tfjs-core';
import type { ArchConfig } from './config.ts';
import type { ForwardContext } from './layers.ts';
import type { BlockInputs, ModelWeights, NetworkInput } from './network.ts';
import { attentionBias, positionsFromMask } from './ops.ts';
import { type Rope, ropeInvFreq, ropeTables } from './rope.ts';
import type { Batch } from './types.ts';

/** The fields of a decoder-only model that the shared decoder pieces read. */
export interface DecoderConfig extends ArchConfig {
  /** Per block: its attention kind, transformers' `layer_types` (`full_attention`, `sliding_attention`). */
  layerTypes: string[];
  /** Sliding attention window by layer type (keys further back are masked); null: full attention. */
  windows: Record<string, number | null>;
  /** RoPE by layer type; null for learned positions (GPT-2). */
  rope: Record<string, Rope> | null;
}

/** `layer_types` of a model whose blocks all attend alike. */
export function uniformLayers(
  numLayers: number,
  window: number | null,
): Pick<DecoderConfig, 'layerTypes' | 'windows'> {
  const type = window === null ? 'full_attention' : 'sliding_attention';
  return { layerTypes: new Array(numLayers).fill(type), windows: { [type]: window } };
}

/**
 * The inputs every block of a decoder shares, for the new tokens of `input`: position ids (transformers'
 * `generate`: cumsum(mask) − 1 over past and new tokens), one causal attention bias and one RoPE table pair
 * per layer type.
 */
export function decoderInputs(arch: DecoderConfig, input: NetworkInput): BlockInputs {
  const [b, t] = input.inputIds.shape;
  const fullMask = input.attentionMask;
  const past = fullMask.shape[1] - t;
  const positions = tf.slice(positionsFromMask(fullMask), [0, past], [b, t]) as tf.Tensor2D;
  const types = [...new Set(arch.layerTypes)];
  const bias: Record<string, tf.Tensor4D> = {};
  for (const type of types) {
    bias[type] = attentionBias(fullMask, {
      causal: true,
      queryLength: t,
      slidingWindow: arch.windows[type] ?? null,
    });
  }
  const rope: BlockInputs['rope'] = {};
  if (arch.rope) {
    for (const type of types) rope[type] = ropeTables(positions, ropeInvFreq(arch.headDim, arch.rope[type]));
  }
  return { batch: b, length: t, positions, rope, bias, cache: null };
}

/** Keys or values of block `layer` with the cached ones of earlier tokens in front; recorded when decoding. */
export function withPast(
  x: tf.Tensor4D,
  shared: BlockInputs,
  layer: number,
  part: 'keys' | 'values',
): tf.Tensor4D {
  const cache = shared.cache;
  if (!cache) return x;
  const past = cache.past?.[part][layer];
  const all = past ? (tf.concat([past, x], 2) as tf.Tensor4D) : x;
  cache.next[part][layer] = all;
  return all;
}

/**
 * transformers' sequence-classification pooling for decoders: the rightmost token that is not the pad
 * token (works for left and right padding); without a pad token, the last token of the attention mask.
 */
export function lastTokenPool(hidden: tf.Tensor2D, batch: Batch, padTokenId: number | null): tf.Tensor2D {
  const { inputIds, attentionMask } = batch;
  const [b, t] = inputIds.shape;
  const h = tf.reshape(hidden, [b, t, -1]);
  const real =
    padTokenId === null
      ? tf.cast(attentionMask, 'float32')
      : tf.cast(tf.notEqual(inputIds, padTokenId), 'float32');
  const index = tf.argMax(tf.mul(real, tf.range(0, t, 1, 'float32')), 1);
  const select = tf.expandDims(tf.cast(tf.oneHot(index, t), 'float32'), 2);
  return tf.sum(tf.mul(h, select), 1) as tf.Tensor2D;
}

/** The output head of a decoder: `lm_head` (causal-lm) or `score` (seq-cls), both bias-free Linear layers. */
export function decoderHead(
  arch: ArchConfig,
  weights: ModelWeights,
): (rows: tf.Tensor2D, ctx: ForwardContext) => tf.Tensor2D {
  const head = weights.layer(arch.task === 'causal-lm' ? 'lm_head' : 'score');
  return (rows, ctx) => head.forward(rows, ctx);
}
