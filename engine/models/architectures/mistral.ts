import { llamaLike } from './llama.ts';

/** Mistral (`MistralForCausalLM`): Llama with a sliding attention window in every block. */
export const mistral = llamaLike('Mistral', ['q_proj', 'v_proj'], {
  modelType: 'mistral',
  normClass: 'MistralRMSNorm',
  biases: (config) => ({
    qkvBias: config.attention_bias === true,
    oBias: config.attention_bias === true,
    mlpBias: config.mlp_bias === true,
  }),
  slidingWindow: (config) => (typeof config.sliding_window === 'number' ? config.sliding_window : null),
});
