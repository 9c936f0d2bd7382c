import type * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer, ForwardContext } from '../../models/layers.ts';
import type { TargetModule, TensorCount } from '../types.ts';

/** What a variant sees of its LoRA layer (`LoraLayer` implements it). */
export interface LoraVariantHost {
  readonly adapterName: string;
  readonly base: AdaptableLayer;
  readonly isEmbedding: boolean;
  readonly settings: { readonly dropout: number };
  /** The plain low-rank ΔW in logical orientation: s·B·A (Embedding: s·(B·A)ᵀ). */
  loraDelta(): tf.Tensor2D;
}

/**
 * A LoRA variant at one module (PEFT's `LoraVariant`, `tuners/lora/variants.py`): created by `init` once A and
 * B exist, it owns its extra tensors and replaces LoRA's forward, ΔW and merge. Tensors it is handed are
 * logical-orientation (out × in; Embedding num × dim) and inside the caller's tidy scope.
 */
export interface LoraVariantLayer {
  /** The variant's tensors under their PEFT suffix (also the native key suffix), e.g. `lora_magnitude_vector`. */
  readonly tensors: readonly { suffix: string; variable: tf.Variable; trainable: boolean }[];
  /**
   * Linear/Conv1D: the adapted output from the base output and LoRA's output `lora` = s·(B·A·x_d + b_B),
   * where `xd` is the (dropped-out) adapter input.
   */
  forward(xd: tf.Tensor2D, base: tf.Tensor2D, lora: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /** Embedding: the adapted rows from the looked-up base rows and LoRA's rows `lora`. */
  embed(base: tf.Tensor2D, lora: tf.Tensor2D): tf.Tensor2D;
  /** ΔW of the adapted module (merged weight minus base weight). */
  deltaWeight(): tf.Tensor2D;
  /** ΔW as left·right factors, or null when the variant's update is not low-rank. */
  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } | null;
  /** PEFT's `merge_safe`: the merged weight for base weight `w`. */
  merge(w: tf.Tensor2D): tf.Tensor2D;
  /** PEFT's `unmerge`: the base weight back from the merged one. */
  unmerge(merged: tf.Tensor2D): tf.Tensor2D;
  /** Frees the variant's caches (its variables belong to the adapter instance). */
  dispose(): void;
}

export interface LoraVariant {
  /** PEFT's `LoraConfig` field that requests it (`use_dora`). */
  readonly peftField: string;
  /** The variant's tensors at a module, for parameter counts and file sizes. */
  count(target: TargetModule): TensorCount[];
  /** PEFT's `init`: the variant's state at one layer, called once the layer holds A and B. */
  init(layer: LoraVariantHost): LoraVariantLayer;
}
