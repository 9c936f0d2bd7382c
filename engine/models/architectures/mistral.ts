import { slidingWindowOf } from '../decoder.ts';
import { llamaFeatures, llamaLike, uniformAttention } from './llama.ts';

/** Mistral (`MistralForCausalLM`): Llama without biases, with a sliding attention window in every block. */
export const mistral = llamaLike('Mistral', ['q_proj', 'v_proj'], {
  modelType: 'mistral',
  defaults: {
    maxPositions: 131072,
    theta: 10000,
    normEps: 1e-6,
    tieWordEmbeddings: false,
    activation: 'silu',
  },
  features: (_config, common) => llamaFeatures(common, 'MistralRMSNorm'),
  // MistralModel ignores layer_types
  layers: (config, numLayers) => uniformAttention(numLayers, slidingWindowOf(config)),
});
