import { flag, positiveInt } from '../config.ts';
import { layerTypesOf, slidingWindowOf } from '../decoder.ts';
import { llamaFeatures, llamaLike } from './llama.ts';

/**
 * The sliding window of Qwen2/Qwen3: used only with `use_sliding_window`, by the layers from
 * `max_window_layers` on unless config.json lists `layer_types`.
 */
export function qwenLayers(config: Record<string, unknown>, numLayers: number) {
  const window = flag(config, 'use_sliding_window', false) ? slidingWindowOf(config) : null;
  const maxWindowLayers = positiveInt(config, 'max_window_layers', 28);
  return layerTypesOf(config, numLayers, window, (i) =>
    window !== null && i >= maxWindowLayers ? 'sliding_attention' : 'full_attention',
  );
}

/** Qwen2 (`Qwen2ForCausalLM`): Llama with biased q/k/v projections. */
export const qwen2 = llamaLike('Qwen2', ['q_proj', 'v_proj'], {
  modelType: 'qwen2',
  defaults: {
    maxPositions: 32768,
    theta: 10000,
    normEps: 1e-6,
    tieWordEmbeddings: false,
    activation: 'silu',
  },
  // Qwen2Attention: q/k/v always with a bias, o_proj and the MLP without
  features: (_config, common) => ({ ...llamaFeatures(common, 'Qwen2RMSNorm'), qkvBias: true }),
  layers: qwenLayers,
});
