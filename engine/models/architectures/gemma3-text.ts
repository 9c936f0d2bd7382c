import { CONFIG_FILE, ModelError, positiveInt } from '../config.ts';
import { layerTypesOf } from '../decoder.ts';
import { type RopeOptions, ropeOf } from '../rope.ts';
import { gemmaFeatures, gemmaWindow } from './gemma2.ts';
import { llamaLike, optionalNumber } from './llama.ts';

type Json = Record<string, unknown>;

/**
 * Gemma3TextConfig's reading of RoPE: per layer type, 4.x's `rope_scaling` and `rope_theta` applying to the
 * global (full_attention) blocks and `rope_local_base_freq` to the sliding ones.
 */
function gemma3Rope(config: Json, opts: RopeOptions) {
  const given = config.rope_parameters;
  const params: Json =
    given === undefined || given === null
      ? {}
      : typeof given === 'object' && !Array.isArray(given)
        ? { ...(given as Json) }
        : (() => {
            throw new ModelError(CONFIG_FILE, '"rope_parameters" must be an object or null');
          })();
  const layer = (type: string, theta: string, fallback: number): Json => {
    const own = params[type] === undefined || params[type] === null ? { rope_type: 'default' } : params[type];
    if (typeof own !== 'object' || Array.isArray(own)) {
      throw new ModelError(CONFIG_FILE, `"rope_parameters.${type}" must be an object`);
    }
    const dict = { ...(own as Json) };
    const top = config[theta];
    if (top !== undefined && top !== null && dict.rope_theta !== undefined && dict.rope_theta !== top) {
      throw new ModelError(
        CONFIG_FILE,
        `"rope_parameters.${type}.rope_theta" (${dict.rope_theta}) disagrees with "${theta}" (${top})`,
      );
    }
    dict.rope_theta ??= top ?? fallback;
    return dict;
  };
  params.full_attention = layer('full_attention', 'rope_theta', 1e6);
  params.sliding_attention = layer('sliding_attention', 'rope_local_base_freq', 1e4);
  const scaling = config.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    if (typeof scaling !== 'object' || Array.isArray(scaling)) {
      throw new ModelError(CONFIG_FILE, '"rope_scaling" must be an object or null');
    }
    params.full_attention = { ...(params.full_attention as Json), ...(scaling as Json) };
  }
  return ropeOf({ rope_parameters: params }, opts);
}

/** Gemma 3 text (`Gemma3ForCausalLM`): Gemma 2's block with q/k norms, local and global blocks with their own RoPE. */
export const gemma3Text = llamaLike(
  { 'causal-lm': 'Gemma3ForCausalLM', 'seq-cls': 'Gemma3TextForSequenceClassification' },
  ['q_proj', 'v_proj'],
  {
    modelType: 'gemma3_text',
    defaults: {
      maxPositions: 131072,
      theta: { full_attention: 1e6, sliding_attention: 1e4 },
      normEps: 1e-6,
      tieWordEmbeddings: true,
      activation: 'gelu_pytorch_tanh',
      headDim: 256,
      padTokenId: 0,
    },
    activationKey: 'hidden_activation',
    readRope: gemma3Rope,
    // Gemma3Attention passes no soft-capping to the attention kernels: attn_logit_softcapping has no effect
    features: (config, common) => ({
      ...gemmaFeatures(config, common, 'Gemma3'),
      qkNorm: true,
      finalSoftcap: optionalNumber(config, 'final_logit_softcapping', null),
    }),
    layers(config, numLayers) {
      const pattern = positiveInt(config, 'sliding_window_pattern', 6);
      return layerTypesOf(config, numLayers, gemmaWindow(config), (i) =>
        (i + 1) % pattern ? 'sliding_attention' : 'full_attention',
      );
    },
  },
);
