import { num, positiveInt } from '../config.ts';
import { layerTypesOf } from '../decoder.ts';
import {
  attentionBias,
  type LlamaCommon,
  type LlamaFeatures,
  llamaFeatures,
  llamaLike,
  optionalNumber,
  refuseUnless,
} from './llama.ts';

/** What Gemma 2 and Gemma 3 share: (1 + w) RMSNorms around both sub-blocks, √d embedding scale, their own score scale. */
export function gemmaFeatures(
  config: Record<string, unknown>,
  common: LlamaCommon,
  prefix: string,
): LlamaFeatures {
  refuseUnless(config, 'use_bidirectional_attention', [false, null]);
  return {
    ...llamaFeatures(common, `${prefix}RMSNorm`),
    ...attentionBias(config),
    embeddingClass: `${prefix}TextScaledWordEmbedding`,
    normPlusOne: true,
    sandwichNorms: true,
    // a float32 tensor in transformers (`torch.tensor(hidden_size ** 0.5)`)
    embedScale: Math.fround(Math.sqrt(common.hiddenSize)),
    attentionScale: num(config, 'query_pre_attn_scalar', 256) ** -0.5,
  };
}

/** `sliding_window` with the config class's default when absent (null: explicitly unset). */
export function gemmaWindow(config: Record<string, unknown>): number | null {
  return config.sliding_window === null ? null : positiveInt(config, 'sliding_window', 4096);
}

/**
 * Gemma 2 (`Gemma2ForCausalLM`): alternating sliding-window and global blocks, soft-capped attention scores
 * and final logits.
 */
export const gemma2 = llamaLike('Gemma2', ['q_proj', 'v_proj'], {
  modelType: 'gemma2',
  defaults: {
    maxPositions: 8192,
    theta: 10000,
    normEps: 1e-6,
    tieWordEmbeddings: true,
    activation: 'gelu_pytorch_tanh',
    headDim: 256,
    padTokenId: 0,
  },
  activationKey: 'hidden_activation',
  features: (config, common) => ({
    ...gemmaFeatures(config, common, 'Gemma2'),
    attnSoftcap: optionalNumber(config, 'attn_logit_softcapping', 50),
    finalSoftcap: optionalNumber(config, 'final_logit_softcapping', 30),
  }),
  layers: (config, numLayers) =>
    layerTypesOf(config, numLayers, gemmaWindow(config), (i) =>
      (i + 1) % 2 ? 'sliding_attention' : 'full_attention',
    ),
});
