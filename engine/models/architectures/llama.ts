import * as tf from '@tensorflow/tfjs-core';
import {
  CONFIG_FILE,
  divide,
  type HeadChoice,
  kvHeads,
  ModelError,
  num,
  optionalId,
  positiveInt,
} from '../config.ts';
import {
  type DecoderConfig,
  decoderHead,
  decoderInputs,
  lastTokenPool,
  uniformLayers,
  withPast,
} from '../decoder.ts';
import type { Architecture, ModelWeights, Network } from '../network.ts';
import { activation, addShapes, attend, mergeHeads, rmsNorm, splitHeads } from '../ops.ts';
import { applyRope, ropeOf } from '../rope.ts';
import { adaptable, decoderHeadModules, weighted } from '../spec.ts';
import type { ModuleInfo } from '../types.ts';

/** A Llama-style decoder: RMSNorm, RoPE, grouped-query attention, gated MLP. */
export interface LlamaConfig extends DecoderConfig {
  /** q/k/v projections carry a bias. */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** The transformers class of its RMSNorm (`LlamaRMSNorm`). */
  normClass: string;
}

/** What distinguishes a Llama-style architecture when reading its config.json. */
export interface LlamaVariant {
  modelType: string;
  normClass: string;
  biases(config: Record<string, unknown>): Pick<LlamaConfig, 'qkvBias' | 'oBias' | 'mlpBias'>;
  /** The sliding attention window of the blocks, or null. */
  slidingWindow(config: Record<string, unknown>): number | null;
}

/** Reads the config.json of a Llama-style decoder. */
export function parseLlamaLike(
  config: Record<string, unknown>,
  head: HeadChoice,
  variant: LlamaVariant,
): LlamaConfig {
  const hiddenSize = positiveInt(config, 'hidden_size');
  const numHeads = positiveInt(config, 'num_attention_heads');
  const numKvHeads = kvHeads(config, numHeads);
  const headDim =
    config.head_dim === undefined || config.head_dim === null
      ? divide(hiddenSize, numHeads, 'hidden_size', 'num_attention_heads')
      : positiveInt(config, 'head_dim');
  if (headDim % 2 !== 0) throw new ModelError(CONFIG_FILE, `head_dim ${headDim} must be even for RoPE`);
  const partial = config.partial_rotary_factor;
  if (typeof partial === 'number' && partial !== 1) {
    throw new ModelError(CONFIG_FILE, `partial_rotary_factor ${partial} is not supported (only 1)`);
  }
  const numLayers = positiveInt(config, 'num_hidden_layers');
  const rope = ropeOf(config, 10000);
  return {
    modelType: variant.modelType,
    ...head,
    basePrefix: 'model',
    vocabSize: positiveInt(config, 'vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: positiveInt(config, 'intermediate_size'),
    maxPositions: positiveInt(config, 'max_position_embeddings', 2048),
    normEps: num(config, 'rms_norm_eps', 1e-6),
    activation: String(config.hidden_act ?? 'silu'),
    // LlamaConfig, Qwen2Config and MistralConfig all default to untied output embeddings
    tieWordEmbeddings: config.tie_word_embeddings === true,
    padTokenId: optionalId(config, 'pad_token_id'),
    initializerRange: num(config, 'initializer_range', 0.02),
    ...variant.biases(config),
    normClass: variant.normClass,
    ...uniformLayers(numLayers, variant.slidingWindow(config)),
    rope: { full_attention: rope, sliding_attention: rope },
  };
}

export function llamaModules(a: LlamaConfig): ModuleInfo[] {
  const d = a.hiddenSize;
  const p = a.basePrefix;
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const norm = a.normClass;
  const mods: ModuleInfo[] = [adaptable(`${p}.embed_tokens`, 'Embedding', [a.vocabSize, d], false)];
  for (let i = 0; i < a.numLayers; i++) {
    const l = `${p}.layers.${i}`;
    const at = { layerIndex: i };
    mods.push(
      adaptable(`${l}.self_attn.q_proj`, 'Linear', [q, d], a.qkvBias, at),
      adaptable(`${l}.self_attn.k_proj`, 'Linear', [kv, d], a.qkvBias, at),
      adaptable(`${l}.self_attn.v_proj`, 'Linear', [kv, d], a.qkvBias, at),
      adaptable(`${l}.self_attn.o_proj`, 'Linear', [d, q], a.oBias, at),
      adaptable(`${l}.mlp.gate_proj`, 'Linear', [a.intermediateSize, d], a.mlpBias, at),
      adaptable(`${l}.mlp.up_proj`, 'Linear', [a.intermediateSize, d], a.mlpBias, at),
      adaptable(`${l}.mlp.down_proj`, 'Linear', [d, a.intermediateSize], a.mlpBias, at),
      weighted(`${l}.input_layernorm`, norm, [d], false, at),
      weighted(`${l}.post_attention_layernorm`, norm, [d], false, at),
    );
  }
  mods.push(weighted(`${p}.norm`, norm, [d], false));
  return [...mods, ...decoderHeadModules(a, `${p}.embed_tokens`)];
}

export function llamaNetwork(a: LlamaConfig, w: ModelWeights): Network {
  const p = a.basePrefix;
  const act = activation(a.activation);
  const embed = w.layer(`${p}.embed_tokens`);
  return {
    numLayers: a.numLayers,
    prepare(input, ctx) {
      const shared = decoderInputs(a, input);
      return { h: embed.embed(tf.reshape(input.inputIds, [-1]) as tf.Tensor1D, ctx), shared };
    },
    block(i, h, shared, ctx) {
      const l = `${p}.layers.${i}`;
      const s = `${l}.self_attn`;
      const type = a.layerTypes[i];
      const rope = shared.rope[type];
      const { batch: b, length: t } = shared;
      const normed = rmsNorm(h, w.param(`${l}.input_layernorm.weight`), a.normEps);
      const q = applyRope(splitHeads(w.layer(`${s}.q_proj`).forward(normed, ctx), b, t, a.numHeads), rope);
      const k4 = splitHeads(w.layer(`${s}.k_proj`).forward(normed, ctx), b, t, a.numKvHeads);
      const k = withPast(applyRope(k4, rope), shared, i, 'keys');
      const v4 = splitHeads(w.layer(`${s}.v_proj`).forward(normed, ctx), b, t, a.numKvHeads);
      const v = withPast(v4, shared, i, 'values');
      const attended = mergeHeads(attend(q, k, v, shared.bias[type]));
      let out = addShapes(h, w.layer(`${s}.o_proj`).forward(attended, ctx));
      const m = rmsNorm(out, w.param(`${l}.post_attention_layernorm.weight`), a.normEps);
      const gate = act(w.layer(`${l}.mlp.gate_proj`).forward(m, ctx));
      const inner = tf.mul(gate, w.layer(`${l}.mlp.up_proj`).forward(m, ctx)) as tf.Tensor2D;
      out = addShapes(out, w.layer(`${l}.mlp.down_proj`).forward(inner, ctx));
      return out;
    },
    finish: (h) => rmsNorm(h, w.param(`${p}.norm.weight`), a.normEps),
    head: decoderHead(a, w),
    pool: (hidden, batch) => lastTokenPool(hidden, batch, a.padTokenId),
  };
}

/** The Llama-style architectures differ only in how their config.json is read. */
export function llamaLike(
  classPrefix: string,
  defaultTargets: readonly string[] | null,
  variant: LlamaVariant,
): Architecture<LlamaConfig> {
  return {
    classes: {
      'causal-lm': `${classPrefix}ForCausalLM`,
      'seq-cls': `${classPrefix}ForSequenceClassification`,
    },
    defaultTargets,
    parse: (config, head) => parseLlamaLike(config, head, variant),
    modules: llamaModules,
    positionLimit: (a) => ({ tokens: a.maxPositions, learned: false }),
    network: llamaNetwork,
  };
}

/** Llama (`LlamaForCausalLM`). */
export const llama = llamaLike('Llama', ['q_proj', 'v_proj'], {
  modelType: 'llama',
  normClass: 'LlamaRMSNorm',
  biases: (config) => ({
    qkvBias: config.attention_bias === true,
    oBias: config.attention_bias === true,
    mlpBias: config.mlp_bias === true,
  }),
  slidingWindow: () => null,
});
