import type * as tf from '@tensorflow/tfjs-core';
import type { TaskKind } from '../common/project-schema.ts';
import type { AdaptableKind, AdaptableLayer, ForwardContext } from './layers.ts';

export type { TaskKind };

/** One entry of the module tree, as `model.named_modules()` lists it (leaf modules with weights). */
export interface ModuleInfo {
  /** Hugging Face module name, verbatim (`transformer.h.0.attn.c_attn`). */
  name: string;
  /** The PyTorch / transformers class name (`Linear`, `Conv1D`, `Embedding`, `LayerNorm`, `LlamaRMSNorm`, …). */
  type: string;
  /** Weight shape as stored in the checkpoint. */
  shape: number[];
  /** Parameters of the module (weight + bias). */
  params: number;
  /** Set when adapters can target this module. */
  adaptable?: AdaptableKind;
  /** Logical in/out features for adaptable modules (Embedding: num_embeddings / embedding_dim). */
  inFeatures?: number;
  outFeatures?: number;
  /** The output head (`lm_head`, or tied embedding output): excluded from `all-linear`. */
  isOutputHead?: boolean;
  /** Transformer block index when the module sits in one. */
  layerIndex?: number;
  /** The module has a bias vector (counted in `params`). */
  hasBias?: boolean;
  /** Set when this module's weight is the same tensor as another module's (`lm_head` tied to the input embedding). */
  tiedTo?: string;
}

/** What is known from `config.json` alone, before any weight is read. */
export interface ModelSpec {
  /** `config.json` `model_type` (gpt2, llama, qwen2, …: the keys of the architecture table). */
  modelType: string;
  /** The transformers class this engine builds (e.g. `GPT2LMHeadModel`, `RobertaForSequenceClassification`). */
  architecture: string;
  task: TaskKind;
  numLabels?: number;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  /** Total parameters (tied tensors once), as `model.num_parameters()` reports. */
  numParameters: number;
  modules: ModuleInfo[];
  /** The raw config.json. */
  config: Record<string, unknown>;
}

/** A padded batch of token ids. */
export interface Batch {
  /** int32 [B, T] */
  inputIds: tf.Tensor2D;
  /** int32 [B, T], 1 for real tokens, 0 for padding */
  attentionMask: tf.Tensor2D;
  /** int32 [B, T] segment ids of sentence pairs (BERT); zeros when absent. */
  tokenTypeIds?: tf.Tensor2D;
}

/**
 * Positions a model takes: `tokens` is what it was trained for (training truncates there); `learned` says
 * longer is impossible (learned position embeddings) rather than merely untrained (RoPE).
 */
export interface PositionLimit {
  tokens: number;
  learned: boolean;
}

/** An output head that is one module followed by an optional soft-cap `cap·tanh(z/cap)`. */
export interface LinearHead {
  layer: AdaptableLayer;
  softcap: number | null;
}

/** A loaded model with frozen base weights and adaptable modules. */
export interface LoadedModel {
  readonly spec: ModelSpec;
  /** The folder the model was loaded from. */
  readonly dir: string;
  /** Adaptable modules by Hugging Face name, in `named_modules()` order. */
  readonly layers: Map<string, AdaptableLayer>;
  /** causal-lm: logits [B, T, vocab] (`head(hidden(batch))`); seq-cls: logits [B, numLabels]. */
  forward(batch: Batch, ctx: ForwardContext): tf.Tensor;
  /**
   * The rows the output head reads, [B·T, d]: a decoder's final-normed hidden states, an encoder's last
   * layer. A loss can run `head` over chunks of them instead of materialising [B·T, vocab] logits at once.
   */
  hidden(batch: Batch, ctx: ForwardContext): tf.Tensor2D;
  /**
   * Logits of hidden rows [N, d]: causal-lm [N, vocab] including any final soft-capping; seq-cls
   * [N, numLabels] of rows already pooled to one per sequence.
   */
  head(rows: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /** The longest sequence the model takes; absent when unbounded (no learned positions, no config limit). */
  readonly positionLimit?: PositionLimit;
  /** causal-lm: the head as one adapter-free module and a soft-cap, when it is that (a chunked loss uses it). */
  linearHead?(): LinearHead | null;
  dispose(): void;
  /** Head modules missing from the checkpoint and initialised at random (seq-cls from a base checkpoint). */
  readonly newlyInitialized?: string[];
}
