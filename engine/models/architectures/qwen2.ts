import { CONFIG_FILE, ModelError } from '../config.ts';
import { llamaLike } from './llama.ts';

/** Qwen2 (`Qwen2ForCausalLM`): Llama with biased q/k/v projections. */
export const qwen2 = llamaLike('Qwen2', ['q_proj', 'v_proj'], {
  modelType: 'qwen2',
  normClass: 'Qwen2RMSNorm',
  biases: (config) => ({
    qkvBias: true,
    oBias: config.attention_bias === true,
    mlpBias: config.mlp_bias === true,
  }),
  slidingWindow(config) {
    if (config.use_sliding_window === true) {
      throw new ModelError(CONFIG_FILE, 'Qwen2 with use_sliding_window=true is not supported');
    }
    return null;
  },
});
