import { describe, expect, it } from 'vitest';
import { specFromConfig, supportedModelTypes } from './registry.ts';

// Fields of real hub config.json files; totals are `model.num_parameters()` of the transformers classes.
const gpt2 = {
  model_type: 'gpt2',
  architectures: ['GPT2LMHeadModel'],
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5,
};

const llama32_3b = {
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  vocab_size: 128256,
  hidden_size: 3072,
  intermediate_size: 8192,
  num_hidden_layers: 28,
  num_attention_heads: 24,
  num_key_value_heads: 8,
  head_dim: 128,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
};

const llama2_7b = {
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
};

const mistral7b = {
  model_type: 'mistral',
  architectures: ['MistralForCausalLM'],
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
};

const qwen2_05b = {
  model_type: 'qwen2',
  architectures: ['Qwen2ForCausalLM'],
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  tie_word_embeddings: true,
};

const robertaLarge = {
  model_type: 'roberta',
  architectures: ['RobertaForMaskedLM'],
  vocab_size: 50265,
  hidden_size: 1024,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  intermediate_size: 4096,
  hidden_act: 'gelu',
  max_position_embeddings: 514,
  type_vocab_size: 1,
  layer_norm_eps: 1e-5,
  pad_token_id: 1,
};

const bertBase = {
  model_type: 'bert',
  architectures: ['BertForMaskedLM'],
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
};

describe('specFromConfig: parameter counts of real configs', () => {
  it('GPT-2 (124M), tied lm_head counted once', () => {
    const spec = specFromConfig(gpt2);
    expect(spec.architecture).toBe('GPT2LMHeadModel');
    expect(spec.numParameters).toBe(124_439_808);
    const head = spec.modules.at(-1)!;
    expect(head).toMatchObject({ name: 'lm_head', type: 'Linear', shape: [50257, 768], isOutputHead: true });
    expect(head.tiedTo).toBe('transformer.wte');
  });

  it('Llama-3.2-3B', () => {
    const spec = specFromConfig(llama32_3b);
    expect(spec.numParameters).toBe(3_212_749_824);
    expect(spec.modules.find((m) => m.name === 'model.layers.0.self_attn.k_proj')).toMatchObject({
      type: 'Linear',
      shape: [1024, 3072],
      adaptable: 'Linear',
      inFeatures: 3072,
      outFeatures: 1024,
      layerIndex: 0,
    });
  });

  it('Llama-2-7B (untied), Mistral-7B (GQA), Qwen2-0.5B (q/k/v bias, tied)', () => {
    expect(specFromConfig(llama2_7b).numParameters).toBe(6_738_415_616);
    expect(specFromConfig(mistral7b).numParameters).toBe(7_241_732_096);
    const qwen = specFromConfig(qwen2_05b);
    expect(qwen.numParameters).toBe(494_032_768);
    expect(qwen.modules.find((m) => m.name === 'model.layers.3.self_attn.q_proj')?.hasBias).toBe(true);
    expect(qwen.modules.find((m) => m.name === 'model.layers.3.self_attn.o_proj')?.hasBias).toBeUndefined();
  });

  it('RoBERTa-large and BERT-base for sequence classification', () => {
    const roberta = specFromConfig(robertaLarge, { numLabels: 3 });
    expect(roberta.architecture).toBe('RobertaForSequenceClassification');
    expect(roberta.numParameters).toBe(355_362_819);
    expect(roberta.modules.slice(-2).map((m) => m.name)).toEqual(['classifier.dense', 'classifier.out_proj']);
    const bert = specFromConfig(bertBase, { task: 'seq-cls', numLabels: 2 });
    expect(bert.numParameters).toBe(109_483_778);
    expect(bert.modules.find((m) => m.name === 'classifier')?.isOutputHead).toBe(true);
  });

  it('decoder sequence classification replaces lm_head with score', () => {
    const spec = specFromConfig(gpt2, { task: 'seq-cls', numLabels: 2 });
    expect(spec.architecture).toBe('GPT2ForSequenceClassification');
    expect(spec.numParameters).toBe(124_439_808 + 2 * 768);
    expect(spec.modules.at(-1)).toMatchObject({ name: 'score', shape: [2, 768], isOutputHead: true });
  });

  it('lists modules in named_modules() order with Hugging Face names', () => {
    const names = specFromConfig(gpt2).modules.map((m) => m.name);
    expect(names.slice(0, 8)).toEqual([
      'transformer.wte',
      'transformer.wpe',
      'transformer.h.0.ln_1',
      'transformer.h.0.attn.c_attn',
      'transformer.h.0.attn.c_proj',
      'transformer.h.0.ln_2',
      'transformer.h.0.mlp.c_fc',
      'transformer.h.0.mlp.c_proj',
    ]);
    const c = specFromConfig(gpt2).modules[3];
    expect(c).toMatchObject({ type: 'Conv1D', shape: [768, 2304], inFeatures: 768, outFeatures: 2304 });
    const roberta = specFromConfig(robertaLarge).modules.map((m) => m.name);
    expect(roberta).toContain('roberta.encoder.layer.0.attention.self.query');
  });

  it('rejects unsupported and incomplete configs with clear messages', () => {
    // the supported list is the registry's (transformers.test.ts checks it against the fixtures)
    expect(() => specFromConfig({ model_type: 't5' })).toThrow(
      `model_type "t5" is not supported (supported: ${supportedModelTypes.join(', ')})`,
    );
    expect(() => specFromConfig({ model_type: 'llama', vocab_size: 10 })).toThrow(
      /config.json: missing "hidden_size"/,
    );
    expect(() => specFromConfig(bertBase, { task: 'causal-lm' })).toThrow(/seq-cls/);
    expect(() => specFromConfig({ ...llama2_7b, rope_scaling: { type: 'mrope', factor: 2 } })).toThrow(
      /rope type "mrope" \("rope_scaling.type"\) is not supported \(supported: default, linear, dynamic, yarn, llama3, longrope\)/,
    );
  });
});
