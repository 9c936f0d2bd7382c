import type * as tf from '@tensorflow/tfjs-core';
import type { ArchConfig, HeadChoice } from './config.ts';
import type { AdaptableLayer, ForwardContext } from './layers.ts';
import type { RopeTables } from './rope.ts';
import type { Batch, LinearHead, ModuleInfo, PositionLimit, TaskKind } from './types.ts';

/**
 * Per-layer keys and values of the tokens seen so far, [B, kvHeads, T, headDim] (after RoPE). A type alias,
 * not an interface, so it is a `TensorContainer` that `tf.tidy` can return.
 */
export type KvCache = {
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
};

/** The tokens of one forward call. */
export interface NetworkInput {
  /** int32 [B, T]: the new tokens. */
  inputIds: tf.Tensor2D;
  /** int32 [B, Tpast + T]: past and new tokens (1 real, 0 padding). */
  attentionMask: tf.Tensor2D;
  /** int32 [B, T] segment ids (BERT). */
  tokenTypeIds?: tf.Tensor2D;
  /** Keys and values of the Tpast earlier tokens (decoding), else null. */
  past: KvCache | null;
}

/**
 * Everything a block reads besides the hidden state, built once per forward call. Blocks depend on nothing
 * else, so a block call can be recomputed on its own (gradient checkpointing).
 */
export interface BlockInputs {
  batch: number;
  /** New tokens per sequence (T). */
  length: number;
  /** int32 [B, T] position ids of the new tokens. */
  positions: tf.Tensor2D;
  /** RoPE tables by layer type (`full_attention`, `sliding_attention`); empty without RoPE. */
  rope: Record<string, RopeTables>;
  /** Additive attention bias [B, 1, T, Tpast + T] by layer type. */
  bias: Record<string, tf.Tensor4D>;
  /** Decoding: block i reads `past` entry i and writes its keys and values (past + new) to `next`. */
  cache: { past: KvCache | null; next: KvCache } | null;
}

/** The forward pass of one architecture over loaded weights; `TransformerModel` runs its blocks in one loop. */
export interface Network {
  readonly numLayers: number;
  /** Embeds the new tokens (h₀ [B·T, d]) and builds the inputs every block shares. */
  prepare(input: NetworkInput, ctx: ForwardContext): { h: tf.Tensor2D; shared: BlockInputs };
  /** Transformer block `layerIndex`: h [B·T, d] → h [B·T, d]. */
  block(layerIndex: number, h: tf.Tensor2D, shared: BlockInputs, ctx: ForwardContext): tf.Tensor2D;
  /** The state after the last block → the rows the head reads (a decoder's final norm). */
  finish(h: tf.Tensor2D): tf.Tensor2D;
  /** Logits of rows: causal-lm [N, vocab] with any final soft-capping; seq-cls [N, labels] of pooled rows. */
  head(rows: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /** seq-cls: one row per sequence [B, d] from the hidden rows [B·T, d]. */
  pool(hidden: tf.Tensor2D, batch: Batch): tf.Tensor2D;
  /**
   * causal-lm: the head as a module and an optional final soft-cap (`cap·tanh(z/cap)`), so a loss can compute
   * its gradient chunk by chunk without a tape; absent where the head is anything else.
   */
  readonly linearHead?: LinearHead;
}

/** The loaded tensors a network reads, by Hugging Face name. */
export interface ModelWeights {
  /** An adaptable module (Linear / Conv1D / Embedding) by module name. */
  layer(name: string): AdaptableLayer;
  /** A non-adaptable parameter (norms) by checkpoint-style name, e.g. `model.norm.weight`. */
  param(name: string): tf.Tensor1D;
}

/**
 * One architecture (`model_type`): everything the engine knows about it. A new architecture is one module
 * implementing this and one entry in the table of `architectures.ts`.
 */
export interface Architecture<A extends ArchConfig = ArchConfig> {
  /** transformers class names by task; the tasks the engine builds for this model_type. */
  readonly classes: Partial<Record<TaskKind, string>>;
  /** PEFT's default LoRA targets (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`); null where PEFT has none. */
  readonly defaultTargets: readonly string[] | null;
  /** config.json → the normalised fields; a field that is missing, invalid or unsupported is named in a ModelError. */
  parse(config: Record<string, unknown>, head: HeadChoice): A;
  /** The leaf modules with weights, in `named_modules()` order, task head included. */
  modules(arch: A): ModuleInfo[];
  /** The longest sequence the model takes. */
  positionLimit(arch: A): PositionLimit;
  /** The forward pass over loaded weights. */
  network(arch: A, weights: ModelWeights): Network;
}
