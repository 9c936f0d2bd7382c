import { CONFIG_FILE, flag, ModelError, positiveInt } from '../config.ts';
import { layerTypesOf, slidingWindowOf } from '../decoder.ts';
import { attentionBias, llamaFeatures, llamaLike } from './llama.ts';

/** Per block: whether it uses RoPE (`no_rope_layers`, 1 = RoPE; else every `no_rope_layer_interval`-th block is NoPE). */
function ropeLayers(config: Record<string, unknown>, numLayers: number): boolean[] {
  const given = config.no_rope_layers;
  if (given === undefined || given === null) {
    const interval = positiveInt(config, 'no_rope_layer_interval', 4);
    return Array.from({ length: numLayers }, (_, i) => (i + 1) % interval !== 0);
  }
  if (!Array.isArray(given) || given.length < numLayers || given.some((x) => x !== 0 && x !== 1)) {
    throw new ModelError(
      CONFIG_FILE,
      `"no_rope_layers" must list 0 or 1 for each of the ${numLayers} layers`,
    );
  }
  return given.slice(0, numLayers).map((x) => x === 1);
}

/** SmolLM3 (`SmolLM3ForCausalLM`): Llama with NoPE blocks (no RoPE) at a fixed interval. */
export const smollm3 = llamaLike('SmolLM3', null, {
  modelType: 'smollm3',
  defaults: {
    maxPositions: 32768,
    theta: 2000000,
    normEps: 1e-6,
    tieWordEmbeddings: true,
    activation: 'silu',
    padTokenId: 128004,
  },
  features: (config, common) => ({
    ...llamaFeatures(common, 'SmolLM3RMSNorm'),
    ...attentionBias(config),
    mlpBias: flag(config, 'mlp_bias', false),
    noRope: ropeLayers(config, common.numLayers).map((rope) => !rope),
  }),
  layers(config, numLayers) {
    const rope = ropeLayers(config, numLayers);
    const window = slidingWindowOf(config);
    const sliding = flag(config, 'use_sliding_window', false) && window !== null;
    return layerTypesOf(config, numLayers, window, (i) =>
      sliding && !rope[i] ? 'sliding_attention' : 'full_attention',
    );
  },
});
