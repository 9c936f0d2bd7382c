import * as tf from '@tensorflow/tfjs-core';
import { type ArchConfig, CONFIG_FILE, ModelError, positiveInt } from './config.ts';
import type { ForwardContext } from './layers.ts';
import type { BlockInputs, ModelWeights, NetworkInput } from './network.ts';
import { attentionBias, positionsFromMask } from './ops.ts';
import { type Rope, ropeDependsOnLength, ropeTables } from './rope.ts';
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

const LAYER_TYPES = ['full_attention', 'sliding_attention'];

/**
 * `layer_types` from config.json, else as the config class derives them (`derive(i)`), with the sliding
 * window of sliding layers (null: they attend fully, as transformers does when the window is unset).
 */
export function layerTypesOf(
  config: Record<string, unknown>,
  numLayers: number,
  slidingWindow: number | null,
  derive: (layer: number) => string,
): Pick<DecoderConfig, 'layerTypes' | 'windows'> {
  const given = config.layer_types;
  let layerTypes: string[];
  if (given === undefined || given === null) {
    layerTypes = Array.from({ length: numLayers }, (_, i) => derive(i));
  } else {
    if (!Array.isArray(given) || given.length !== numLayers) {
      throw new ModelError(CONFIG_FILE, `"layer_types" must list one type per layer (${numLayers})`);
    }
    const unknown = given.find((t) => !LAYER_TYPES.includes(t));
    if (unknown !== undefined) {
      throw new ModelError(
        CONFIG_FILE,
        `"layer_types" entry ${JSON.stringify(unknown)} is not supported (supported: ${LAYER_TYPES.join(', ')})`,
      );
    }
    layerTypes = given as string[];
  }
  return { layerTypes, windows: { full_attention: null, sliding_attention: slidingWindow } };
}

/** `sliding_window` when the config sets one (a positive integer), else null. */
export function slidingWindowOf(config: Record<string, unknown>): number | null {
  return config.sliding_window === undefined || config.sliding_window === null
    ? null
    : positiveInt(config, 'sliding_window');
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
  const ropes = arch.rope;
  if (ropes) {
    // dynamic and longrope scale with the longest position of the call (transformers: max(position_ids) + 1)
    const seqLength = types.some((type) => ropeDependsOnLength(ropes[type]))
      ? tf.max(positions).dataSync()[0] + 1
      : 0;
    for (const type of types) rope[type] = ropeTables(positions, ropes[type], seqLength);
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
