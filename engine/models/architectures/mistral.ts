import { slidingWindowOf } from '../decoder.ts';
import { llamaFeatures, llamaLike } from './llama.ts';

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
  layers(config, numLayers) {
    // MistralModel masks every block with `sliding_window` when set (it ignores layer_types)
    const window = slidingWindowOf(config);
    const type = window === null ? 'full_attention' : 'sliding_attention';
    return { layerTypes: new Array(numLayers).fill(type), windows: { [type]: window } };
  },
});
