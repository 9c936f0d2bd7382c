import { num } from '../config.ts';
import { slidingWindowOf } from '../decoder.ts';
import { ropeOf } from '../rope.ts';
import { llamaFeatures, llamaLike, uniformAttention } from './llama.ts';

/**
 * Phi-3 (`Phi3ForCausalLM`): fused `qkv_proj` and `gate_up_proj` (PEFT targets them by these names),
 * partial rotary embeddings, longrope.
 */
export const phi3 = llamaLike('Phi3', null, {
  modelType: 'phi3',
  defaults: {
    maxPositions: 4096,
    theta: 10000,
    normEps: 1e-5,
    tieWordEmbeddings: false,
    activation: 'silu',
    padTokenId: 32000,
  },
  rope: {
    partialRotary: true,
    types: ['default', 'longrope'],
    legacyTypes: { su: 'longrope', yarn: 'longrope' },
  },
  // Phi3Config always has original_max_position_embeddings (default 4096), and it wins over rope_parameters'
  readRope: (config, opts) =>
    ropeOf(
      { ...config, original_max_position_embeddings: num(config, 'original_max_position_embeddings', 4096) },
      opts,
    ),
  features: (_config, common) => ({ ...llamaFeatures(common, 'Phi3RMSNorm'), fused: true }),
  layers: (config, numLayers) => uniformAttention(numLayers, slidingWindowOf(config)),
});
