import * as tf from '@tensorflow/tfjs-core';
import {
  CONFIG_FILE,
  divide,
  flag,
  type HeadChoice,
  kvHeads,
  ModelError,
  num,
  optionalId,
  positiveInt,
} from '../config.ts';
import { type DecoderConfig, decoderInputs, lastTokenPool, withPast } from '../decoder.ts';
import type { ForwardContext } from '../layers.ts';
import type { Architecture, ModelWeights, Network } from '../network.ts';
import { addShapes, attend, gatedActivation, mergeHeads, rmsNorm, splitHeads } from '../ops.ts';
import { applyRope, type Rope, type RopeOptions, ropeOf } from '../rope.ts';
import { adaptable, decoderHeadModules, weighted } from '../spec.ts';
import type { ModuleInfo } from '../types.ts';

/**
 * A decoder of the Llama family: RMSNorm, RoPE, grouped-query attention, gated MLP. The flags are what
 * Qwen3, Phi-3, SmolLM3 and Gemma 2/3 change; the module tree and the block follow from them.
 */
export interface LlamaConfig extends DecoderConfig {
  /** q/k/v projections carry a bias. */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** The transformers classes of the norms and the input embedding. */
  normClass: string;
  embeddingClass: string;
  /** Norm weights are stored as w and applied as 1 + w (Gemma). */
  normPlusOne: boolean;
  /** Per-head RMSNorm of queries and keys before RoPE (`q_norm`, `k_norm`: Qwen3, Gemma 3). */
  qkNorm: boolean;
  /** One `qkv_proj` and one `gate_up_proj` instead of q/k/v and gate/up (Phi-3). */
  fused: boolean;
  /**
   * Gemma's norms around both sub-blocks: `post_attention_layernorm` normalises the attention output, and
   * `pre_feedforward_layernorm` / `post_feedforward_layernorm` wrap the MLP.
   */
  sandwichNorms: boolean;
  /** The input embedding is multiplied by this (Gemma: √hidden_size), else null. */
  embedScale: number | null;
  /** Attention score scale (1/√head_dim; Gemma: query_pre_attn_scalar^-½). */
  attentionScale: number;
  attnSoftcap: number | null;
  /** Logits become cap·tanh(logits / cap) (Gemma 2's `final_logit_softcapping`). */
  finalSoftcap: number | null;
  /** Per block: RoPE skipped (SmolLM3's NoPE layers). */
  noRope: boolean[];
}

/** Fields of a LlamaConfig that the block and module tree read, besides the common ones. */
export type LlamaFeatures = Pick<
  LlamaConfig,
  | 'qkvBias'
  | 'oBias'
  | 'mlpBias'
  | 'normClass'
  | 'embeddingClass'
  | 'normPlusOne'
  | 'qkNorm'
  | 'fused'
  | 'sandwichNorms'
  | 'embedScale'
  | 'attentionScale'
  | 'attnSoftcap'
  | 'finalSoftcap'
  | 'noRope'
>;

/** transformers' config-class defaults for fields a config.json may omit. */
export interface LlamaDefaults {
  maxPositions: number;
  theta: RopeOptions['defaultTheta'];
  normEps: number;
  tieWordEmbeddings: boolean;
  activation: string;
  /** `head_dim` when absent (default: hidden_size / num_attention_heads). */
  headDim?: number;
  padTokenId?: number | null;
}

/** What a Llama-family architecture module supplies to read its config.json. */
export interface LlamaVariant {
  modelType: string;
  defaults: LlamaDefaults;
  /** The config key of the MLP activation (`hidden_act`; Gemma: `hidden_activation`). */
  activationKey?: string;
  /** RoPE reading options beyond head_dim, max positions and layer types. */
  rope?: Pick<RopeOptions, 'partialRotary' | 'types' | 'legacyTypes'>;
  /** The block layout and its options. */
  features(config: Record<string, unknown>, common: LlamaCommon): LlamaFeatures;
  /** `layer_types` and sliding windows of the blocks. */
  layers(config: Record<string, unknown>, numLayers: number): Pick<DecoderConfig, 'layerTypes' | 'windows'>;
  /** RoPE by layer type; default: `ropeOf` on config.json. */
  readRope?(config: Record<string, unknown>, opts: RopeOptions): Record<string, Rope>;
}

/** The fields every Llama-family config has, read before the variant's features. */
export type LlamaCommon = Omit<LlamaConfig, keyof LlamaFeatures | 'layerTypes' | 'windows' | 'rope'>;

/** The feature flags of plain Llama, for variants to override. */
export function llamaFeatures(common: LlamaCommon, normClass: string): LlamaFeatures {
  return {
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    normClass,
    embeddingClass: 'Embedding',
    normPlusOne: false,
    qkNorm: false,
    fused: false,
    sandwichNorms: false,
    embedScale: null,
    attentionScale: 1 / Math.sqrt(common.headDim),
    attnSoftcap: null,
    finalSoftcap: null,
    noRope: new Array(common.numLayers).fill(false),
  };
}

/** transformers' `attention_bias`: a bias on all four attention projections (q, k, v, o). */
export function attentionBias(config: Record<string, unknown>): Pick<LlamaFeatures, 'qkvBias' | 'oBias'> {
  const bias = flag(config, 'attention_bias', false);
  return { qkvBias: bias, oBias: bias };
}

/** A number field that may be null (transformers' `float | None`), e.g. a soft-capping value. */
export function optionalNumber(
  config: Record<string, unknown>,
  key: string,
  fallback: number | null,
): number | null {
  const value = config[key];
  if (value === null) return null;
  return value === undefined ? fallback : num(config, key);
}

/** Reads the config.json of a Llama-family decoder. */
export function parseLlamaLike(
  config: Record<string, unknown>,
  head: HeadChoice,
  variant: LlamaVariant,
): LlamaConfig {
  const d = variant.defaults;
  const hiddenSize = positiveInt(config, 'hidden_size');
  const numHeads = positiveInt(config, 'num_attention_heads');
  const headDim =
    config.head_dim === undefined || config.head_dim === null
      ? (d.headDim ?? divide(hiddenSize, numHeads, 'hidden_size', 'num_attention_heads'))
      : positiveInt(config, 'head_dim');
  const numLayers = positiveInt(config, 'num_hidden_layers');
  const maxPositions = positiveInt(config, 'max_position_embeddings', d.maxPositions);
  const activationKey = variant.activationKey ?? 'hidden_act';
  const common: LlamaCommon = {
    modelType: variant.modelType,
    ...head,
    basePrefix: 'model',
    vocabSize: positiveInt(config, 'vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: kvHeads(config, numHeads),
    headDim,
    intermediateSize: positiveInt(config, 'intermediate_size'),
    maxPositions,
    normEps: num(config, 'rms_norm_eps', d.normEps),
    activation: String(config[activationKey] ?? d.activation),
    tieWordEmbeddings: flag(config, 'tie_word_embeddings', d.tieWordEmbeddings),
    padTokenId:
      config.pad_token_id === undefined ? (d.padTokenId ?? null) : optionalId(config, 'pad_token_id'),
    initializerRange: num(config, 'initializer_range', 0.02),
  };
  const layers = variant.layers(config, numLayers);
  const ropeOptions: RopeOptions = {
    defaultTheta: d.theta,
    headDim,
    maxPositions,
    layerTypes: layers.layerTypes,
    ...variant.rope,
  };
  const rope = variant.readRope ? variant.readRope(config, ropeOptions) : ropeOf(config, ropeOptions);
  return { ...common, ...variant.features(config, common), ...layers, rope };
}

export function llamaModules(a: LlamaConfig): ModuleInfo[] {
  const d = a.hiddenSize;
  const p = a.basePrefix;
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const inner = a.intermediateSize;
  const norm = a.normClass;
  const mods: ModuleInfo[] = [
    adaptable(`${p}.embed_tokens`, 'Embedding', [a.vocabSize, d], false, {}, a.embeddingClass),
  ];
  for (let i = 0; i < a.numLayers; i++) {
    const l = `${p}.layers.${i}`;
    const s = `${l}.self_attn`;
    const at = { layerIndex: i };
    if (a.fused) {
      mods.push(
        adaptable(`${s}.o_proj`, 'Linear', [d, q], a.oBias, at),
        adaptable(`${s}.qkv_proj`, 'Linear', [q + 2 * kv, d], a.qkvBias, at),
      );
    } else {
      mods.push(
        adaptable(`${s}.q_proj`, 'Linear', [q, d], a.qkvBias, at),
        adaptable(`${s}.k_proj`, 'Linear', [kv, d], a.qkvBias, at),
        adaptable(`${s}.v_proj`, 'Linear', [kv, d], a.qkvBias, at),
        adaptable(`${s}.o_proj`, 'Linear', [d, q], a.oBias, at),
      );
    }
    if (a.qkNorm) {
      mods.push(
        weighted(`${s}.q_norm`, norm, [a.headDim], false, at),
        weighted(`${s}.k_norm`, norm, [a.headDim], false, at),
      );
    }
    if (a.fused) {
      mods.push(adaptable(`${l}.mlp.gate_up_proj`, 'Linear', [2 * inner, d], a.mlpBias, at));
    } else {
      mods.push(
        adaptable(`${l}.mlp.gate_proj`, 'Linear', [inner, d], a.mlpBias, at),
        adaptable(`${l}.mlp.up_proj`, 'Linear', [inner, d], a.mlpBias, at),
      );
    }
    mods.push(
      adaptable(`${l}.mlp.down_proj`, 'Linear', [d, inner], a.mlpBias, at),
      weighted(`${l}.input_layernorm`, norm, [d], false, at),
      weighted(`${l}.post_attention_layernorm`, norm, [d], false, at),
    );
    if (a.sandwichNorms) {
      mods.push(
        weighted(`${l}.pre_feedforward_layernorm`, norm, [d], false, at),
        weighted(`${l}.post_feedforward_layernorm`, norm, [d], false, at),
      );
    }
  }
  mods.push(weighted(`${p}.norm`, norm, [d], false));
  return [...mods, ...decoderHeadModules(a, `${p}.embed_tokens`)];
}

/** cap·tanh(x / cap). */
function softcap(x: tf.Tensor2D, cap: number): tf.Tensor2D {
  return tf.mul(tf.tanh(tf.div(x, cap)), cap) as tf.Tensor2D;
}

export function llamaNetwork(a: LlamaConfig, w: ModelWeights): Network {
  const p = a.basePrefix;
  const embed = w.layer(`${p}.embed_tokens`);
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const norm = (x: tf.Tensor2D, name: string): tf.Tensor2D => {
    const weight = w.param(`${name}.weight`);
    return rmsNorm(x, a.normPlusOne ? (tf.add(weight, 1) as tf.Tensor1D) : weight, a.normEps);
  };
  /** Per-head norm of [B·T, heads·headDim] projections. */
  const headNorm = (x: tf.Tensor2D, name: string): tf.Tensor2D =>
    tf.reshape(norm(tf.reshape(x, [-1, a.headDim]) as tf.Tensor2D, name), x.shape) as tf.Tensor2D;
  const projections = (s: string, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D[] =>
    a.fused
      ? (tf.split(w.layer(`${s}.qkv_proj`).forward(x, ctx), [q, kv, kv], 1) as tf.Tensor2D[])
      : [
          w.layer(`${s}.q_proj`).forward(x, ctx),
          w.layer(`${s}.k_proj`).forward(x, ctx),
          w.layer(`${s}.v_proj`).forward(x, ctx),
        ];
  /** `outputUnread`: the MLP's output is only summed into a recomputed block's output. */
  const mlp = (l: string, x: tf.Tensor2D, ctx: ForwardContext, outputUnread = false): tf.Tensor2D => {
    const [gate, up] = a.fused
      ? (tf.split(w.layer(`${l}.mlp.gate_up_proj`).forward(x, ctx), 2, 1) as tf.Tensor2D[])
      : [w.layer(`${l}.mlp.gate_proj`).forward(x, ctx), w.layer(`${l}.mlp.up_proj`).forward(x, ctx)];
    const act = gatedActivation(a.activation, gate, up) as tf.Tensor2D;
    return w.layer(`${l}.mlp.down_proj`).forward(act, ctx, outputUnread);
  };
  const head = w.layer(a.task === 'causal-lm' ? 'lm_head' : 'score');
  const finalSoftcap = a.task === 'causal-lm' ? a.finalSoftcap : null;
  return {
    numLayers: a.numLayers,
    prepare(input, ctx) {
      const shared = decoderInputs(a, input);
      const h = embed.embed(tf.reshape(input.inputIds, [-1]) as tf.Tensor1D, ctx);
      return { h: a.embedScale === null ? h : (tf.mul(h, a.embedScale) as tf.Tensor2D), shared };
    },
    block(i, h, shared, ctx) {
      const l = `${p}.layers.${i}`;
      const s = `${l}.self_attn`;
      const type = a.layerTypes[i];
      const rope = a.noRope[i] ? null : shared.rope[type];
      const { batch: b, length: t } = shared;
      const x = norm(h, `${l}.input_layernorm`);
      let [q2, k2, v2] = projections(s, x, ctx);
      if (a.qkNorm) {
        q2 = headNorm(q2, `${s}.q_norm`);
        k2 = headNorm(k2, `${s}.k_norm`);
      }
      let q4 = splitHeads(q2, b, t, a.numHeads);
      let k4 = splitHeads(k2, b, t, a.numKvHeads);
      if (rope) {
        q4 = applyRope(q4, rope);
        k4 = applyRope(k4, rope);
      }
      const k = withPast(k4, shared, i, 'keys');
      const v = withPast(splitHeads(v2, b, t, a.numKvHeads), shared, i, 'values');
      const attended = mergeHeads(
        attend(q4, k, v, shared.bias[type], { scale: a.attentionScale, softcap: a.attnSoftcap }),
      );
      let attention = w.layer(`${s}.o_proj`).forward(attended, ctx);
      if (a.sandwichNorms) {
        attention = norm(attention, `${l}.post_attention_layernorm`);
        const out = addShapes(h, attention);
        const m = mlp(l, norm(out, `${l}.pre_feedforward_layernorm`), ctx);
        return addShapes(out, norm(m, `${l}.post_feedforward_layernorm`));
      }
      const out = addShapes(h, attention);
      // the block's output feeds nothing but the next block, which a recomputation does not run; addShapes'
      // gradient reads no values
      const unread = ctx.recomputing === true;
      return addShapes(out, mlp(l, norm(out, `${l}.post_attention_layernorm`), ctx, unread));
    },
    finish: (h) => norm(h, `${p}.norm`),
    head(rows, ctx) {
      const logits = head.forward(rows, ctx);
      return finalSoftcap === null ? logits : softcap(logits, finalSoftcap);
    },
    pool: (hidden, batch) => lastTokenPool(hidden, batch, a.padTokenId),
    ...(a.task === 'causal-lm' ? { linearHead: { layer: head, softcap: finalSoftcap } } : {}),
  };
}

/**
 * A Llama-family architecture: its config reading plus the shared module tree and network. `classes` is the
 * transformers class prefix (`Qwen2` → Qwen2ForCausalLM, Qwen2ForSequenceClassification) or the two names.
 */
export function llamaLike(
  classes: string | Architecture['classes'],
  defaultTargets: readonly string[] | null,
  variant: LlamaVariant,
): Architecture<LlamaConfig> {
  return {
    classes:
      typeof classes === 'string'
        ? { 'causal-lm': `${classes}ForCausalLM`, 'seq-cls': `${classes}ForSequenceClassification` }
        : classes,
    defaultTargets,
    parse: (config, head) => parseLlamaLike(config, head, variant),
    modules: llamaModules,
    positionLimit: (a) => ({ tokens: a.maxPositions, learned: false }),
    network: llamaNetwork,
  };
}

/** Every block attending alike: within `window` when set (Mistral, Phi-3 mask all blocks with it), else fully. */
export function uniformAttention(
  numLayers: number,
  window: number | null,
): Pick<DecoderConfig, 'layerTypes' | 'windows'> {
  const type = window === null ? 'full_attention' : 'sliding_attention';
  return { layerTypes: new Array(numLayers).fill(type), windows: { [type]: window } };
}

/** Refuses a config field the engine does not implement when it is set to anything but `allowed`. */
export function refuseUnless(config: Record<string, unknown>, key: string, allowed: unknown[]): void {
  const value = config[key];
  if (value !== undefined && !allowed.includes(value)) {
    throw new ModelError(CONFIG_FILE, `"${key}": ${JSON.stringify(value)} is not supported`);
  }
}

/** Llama (`LlamaForCausalLM`). */
export const llama = llamaLike('Llama', ['q_proj', 'v_proj'], {
  modelType: 'llama',
  defaults: { maxPositions: 2048, theta: 10000, normEps: 1e-6, tieWordEmbeddings: false, activation: 'silu' },
  features: (config, common) => ({
    ...llamaFeatures(common, 'LlamaRMSNorm'),
    ...attentionBias(config),
    mlpBias: flag(config, 'mlp_bias', false),
  }),
  layers: (_config, numLayers) => uniformAttention(numLayers, null),
});
