import { attentionBias, llamaFeatures, llamaLike } from './llama.ts';
import { qwenLayers } from './qwen2.ts';

/** Qwen3 (`Qwen3ForCausalLM`): Qwen2's layout with per-head RMSNorm of queries and keys, no q/k/v bias. */
export const qwen3 = llamaLike('Qwen3', ['q_proj', 'v_proj'], {
  modelType: 'qwen3',
  defaults: {
    maxPositions: 32768,
    theta: 10000,
    normEps: 1e-6,
    tieWordEmbeddings: false,
    activation: 'silu',
    headDim: 128,
  },
  features: (config, common) => ({
    ...llamaFeatures(common, 'Qwen3RMSNorm'),
    ...attentionBias(config),
    qkNorm: true,
  }),
  layers: qwenLayers,
});
