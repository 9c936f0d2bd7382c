import type { ArchConfig } from '../../models/config.ts';
import { ExportError } from '../errors.ts';
import { f32, type GgufValue, str, u32 } from './format.ts';

/** What the model's config.json says, raw and normalised. */
export interface ArchInput {
  config: Record<string, unknown>;
  arch: ArchConfig;
  /** tokenizer.json's vocabulary plus its added tokens (Gemma3Model trims token_embd to it). */
  tokenizerRows?: number;
}

/** The converter's rewrite of one tensor's values. */
export type TensorRewrite =
  | { kind: 'permute'; heads: number }
  | { kind: 'transpose' }
  /** `data + by` in the checkpoint's dtype (Gemma's RMSNorm weights, stored as w for a norm that scales by 1 + w). */
  | { kind: 'shift'; by: number }
  /** The first `rows` rows only. */
  | { kind: 'rows'; rows: number };

/**
 * One architecture as llama.cpp's converter writes it: the `general.architecture` name, Hugging Face tensor
 * names → GGUF names (by the part after the block prefix), per-tensor rewrites the converter applies, and the
 * hyperparameter keys in the converter's order. New architectures are one entry of `GGUF_ARCHITECTURES`.
 */
export interface GgufArchitecture {
  /** `general.architecture`. */
  name: string;
  /** Where the blocks are: `model.layers.` → `blk.N.`. */
  blockPrefix: RegExp;
  /** Hugging Face name (block prefix removed for block tensors) → GGUF name without the `blk.N.` prefix. */
  blockTensors: Record<string, string>;
  globalTensors: Record<string, string>;
  /** Checkpoint tensors the converter drops (buffers, not weights). */
  skip: RegExp;
  /** The converter's rewrite of a tensor's values (Q/K RoPE permutation, Conv1D transpose), or null. */
  rewrite(hfName: string, shape: number[], input: ArchInput): TensorRewrite | null;
  /** `{arch}.…` hyperparameters and `general.file_type`, in the order the converter adds them. */
  parameters(input: ArchInput, fileType: number): [string, GgufValue][];
  /** The vocabulary the converter tries first (`LlamaHfVocab` only for the llama family). */
  llamaVocab: boolean;
  /**
   * Fields transformers' config class fills in: the converter reads `AutoConfig.from_pretrained(dir).to_dict()`,
   * not the raw config.json, so a default there becomes a key in the file (Llama's `head_dim`).
   */
  configDefaults?(config: Record<string, unknown>): Record<string, unknown>;
  /** Whether llama.cpp's loader types the model LLM_TYPE_70B (src/models/<arch>.cpp), which changes Q4_K_M's mix. */
  is70B?(arch: ArchConfig): boolean;
  /**
   * Refuses a config that llama.cpp's runtime for this architecture would run differently from transformers
   * (settings its loader fixes instead of reading from the file); the converter writes such files silently.
   */
  check?(config: Record<string, unknown>): void;
}

/** The rope block of a config, in either transformers generation (`rope_parameters` or `rope_scaling` + `rope_theta`). */
function ropeParameters(config: Record<string, unknown>): Record<string, unknown> {
  const params = { ...((config.rope_parameters ?? config.rope_scaling ?? {}) as Record<string, unknown>) };
  // TextModel mirrors the top-level fields only into a rope block that is not split by layer type
  if (params.full_attention !== undefined || params.sliding_attention !== undefined) return params;
  if (typeof config.rope_local_base_freq === 'number')
    params.sliding_attention = { rope_theta: config.rope_local_base_freq };
  if (params.rope_theta === undefined && typeof config.rope_theta === 'number')
    params.rope_theta = config.rope_theta;
  if (params.rope_type === undefined && params.type !== undefined) params.rope_type = params.type;
  return params;
}

function first(config: Record<string, unknown>, keys: string[]): unknown {
  for (const k of keys) if (config[k] !== undefined && config[k] !== null) return config[k];
  return undefined;
}

/** TextModel.set_gguf_parameters: the keys every text architecture gets. */
function textParameters(a: string, { config }: ArchInput, fileType: number): [string, GgufValue][] {
  const out: [string, GgufValue][] = [];
  const blocks = first(config, ['n_layers', 'num_hidden_layers', 'n_layer', 'num_layers']);
  out.push([`${a}.block_count`, u32(blocks as number)]);
  const ctx = first(config, [
    'max_position_embeddings',
    'n_ctx',
    'n_positions',
    'max_length',
    'max_sequence_length',
    'model_max_length',
  ]);
  if (ctx !== undefined) out.push([`${a}.context_length`, u32(ctx as number)]);
  const embd = first(config, ['hidden_size', 'n_embd', 'dim']);
  if (embd !== undefined) out.push([`${a}.embedding_length`, u32(embd as number)]);
  const ff = first(config, [
    'prefix_dense_intermediate_size',
    'dense_intermediate_size',
    'intermediate_size',
    'n_inner',
    'hidden_dim',
  ]);
  if (ff !== undefined) out.push([`${a}.feed_forward_length`, u32(ff as number)]);
  const heads = first(config, ['num_attention_heads', 'n_head', 'n_heads']);
  if (heads !== undefined) out.push([`${a}.attention.head_count`, u32(heads as number)]);
  const kv = first(config, ['num_key_value_heads', 'n_kv_heads']);
  if (kv !== undefined) out.push([`${a}.attention.head_count_kv`, u32(kv as number)]);
  const ropeBlocks = ropeParameters(config);
  const rope = (ropeBlocks.full_attention ?? ropeBlocks) as Record<string, unknown>;
  const ropeType = rope.rope_type;
  if (ropeType === 'linear' && typeof rope.factor === 'number') {
    out.push([`${a}.rope.scaling.type`, str('linear')], [`${a}.rope.scaling.factor`, f32(rope.factor)]);
  } else if (ropeType !== undefined && ropeType !== 'default' && ropeType !== 'llama3' && ropeType !== null) {
    throw new ExportError(
      `config.json: rope type "${String(ropeType)}" is not written to GGUF by this studio`,
    );
  }
  if (typeof rope.rope_theta === 'number') out.push([`${a}.rope.freq_base`, f32(rope.rope_theta)]);
  const swaTheta = (ropeBlocks.sliding_attention as Record<string, unknown> | undefined)?.rope_theta;
  if (typeof swaTheta === 'number') out.push([`${a}.rope.freq_base_swa`, f32(swaTheta)]);
  const rms = first(config, ['rms_norm_eps', 'norm_eps']);
  if (rms !== undefined) out.push([`${a}.attention.layer_norm_rms_epsilon`, f32(rms as number)]);
  const ln = first(config, ['layer_norm_eps', 'layer_norm_epsilon', 'norm_epsilon']);
  if (ln !== undefined) out.push([`${a}.attention.layer_norm_epsilon`, f32(ln as number)]);
  if (typeof config.head_dim === 'number') {
    out.push(
      [`${a}.attention.key_length`, u32(config.head_dim)],
      [`${a}.attention.value_length`, u32(config.head_dim)],
    );
  }
  out.push(['general.file_type', u32(fileType)]);
  return out;
}

const LLAMA_BLOCK: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.o_proj.bias': 'attn_output.bias',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.gate_proj.bias': 'ffn_gate.bias',
  'mlp.up_proj.bias': 'ffn_up.bias',
  'mlp.down_proj.bias': 'ffn_down.bias',
};
const LLAMA_GLOBAL: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/** LlamaModel (llama, mistral, and SmolLM3Model): Q/K rows permuted from Hugging Face's rotate-half layout to ggml's interleaved RoPE. */
const llamaLike = (name: string, extra: Partial<GgufArchitecture> = {}): GgufArchitecture => ({
  name,
  blockPrefix: /^model\.layers\.(\d+)\./,
  blockTensors: LLAMA_BLOCK,
  globalTensors: LLAMA_GLOBAL,
  skip: /\.rotary_emb\.inv_freq$/,
  rewrite(name, _shape, { arch }) {
    if (/\.q_proj\.(weight|bias)$/.test(name)) return { kind: 'permute', heads: arch.numHeads };
    if (/\.k_proj\.(weight|bias)$/.test(name)) return { kind: 'permute', heads: arch.numKvHeads };
    return null;
  },
  parameters(input, fileType) {
    const out = textParameters(name, input, fileType);
    out.push([`${name}.vocab_size`, u32(input.config.vocab_size as number)]);
    const ropeDim =
      typeof input.config.head_dim === 'number'
        ? input.config.head_dim
        : (input.config.hidden_size as number) / (input.config.num_attention_heads as number);
    out.push([`${name}.rope.dimension_count`, u32(Math.floor(ropeDim))]);
    return out;
  },
  llamaVocab: true,
  configDefaults: (config) => ({
    ...config,
    head_dim:
      config.head_dim ?? Math.floor((config.hidden_size as number) / (config.num_attention_heads as number)),
  }),
  ...extra,
});

const llama = llamaLike('llama', {
  is70B: (arch) => arch.numLayers === 80 && arch.numHeads !== arch.numKvHeads,
});

/** `use_sliding_window`: windowed attention that llama.cpp's qwen2/qwen3/smollm3 graphs do not have. */
function noSlidingWindow(config: Record<string, unknown>): void {
  if (config.use_sliding_window === true) {
    throw new ExportError(
      `config.json: use_sliding_window is true, and llama.cpp's ${String(config.model_type)} attends to the whole context; GGUF export refuses a file that would run differently`,
    );
  }
}

/** llama.cpp's smollm3 skips RoPE on every 4th layer (n_no_rope_layer_step = 4), whatever the config says. */
const smollm3 = llamaLike('smollm3', {
  check(config) {
    noSlidingWindow(config);
    const n = config.num_hidden_layers as number;
    const interval = typeof config.no_rope_layer_interval === 'number' ? config.no_rope_layer_interval : 4;
    const layers = Array.isArray(config.no_rope_layers)
      ? (config.no_rope_layers as number[])
      : Array.from({ length: n }, (_, i) => ((i + 1) % interval !== 0 ? 1 : 0));
    const expected = Array.from({ length: n }, (_, i) => ((i + 1) % 4 !== 0 ? 1 : 0));
    if (layers.join() !== expected.join()) {
      throw new ExportError(
        `config.json: no_rope_layers [${layers.join(', ')}] is not llama.cpp's smollm3 pattern (RoPE off on every 4th layer: [${expected.join(', ')}]); GGUF export refuses a file llama.cpp would run differently`,
      );
    }
  },
});

const QK_NORMS: Record<string, string> = {
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
};

/** Qwen2Model: the generic text keys, NeoX RoPE (no permutation). */
const qwen2: GgufArchitecture = {
  name: 'qwen2',
  blockPrefix: /^model\.layers\.(\d+)\./,
  blockTensors: LLAMA_BLOCK,
  globalTensors: LLAMA_GLOBAL,
  skip: /\.rotary_emb\.inv_freq$/,
  rewrite: () => null,
  parameters: (input, fileType) => textParameters('qwen2', input, fileType),
  llamaVocab: false,
  is70B: (arch) => arch.numLayers === 80,
  check: noSlidingWindow,
};

/** Qwen3Model (a Qwen2Model): RMS-normed Q and K heads. */
const qwen3: GgufArchitecture = {
  ...qwen2,
  name: 'qwen3',
  blockTensors: { ...LLAMA_BLOCK, ...QK_NORMS },
  parameters: (input, fileType) => textParameters('qwen3', input, fileType),
  is70B: undefined,
};

/** Sets a key where the converter's writer has it already (a dict keeps the first position), else appends. */
function setKey(out: [string, GgufValue][], key: string, value: GgufValue): void {
  const i = out.findIndex(([k]) => k === key);
  if (i >= 0) out[i] = [key, value];
  else out.push([key, value]);
}

/** Gemma3TextConfig's defaults for the fields Gemma3Model reads. */
const GEMMA3_DEFAULTS: Record<string, unknown> = {
  max_position_embeddings: 131072,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-6,
  head_dim: 256,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
};

/**
 * Gemma3Model (gemma3_text): norms stored as 1 + w (Gemma3RMSNorm scales by 1 + w), token_embd trimmed to the
 * tokenizer's rows, the global layers' RoPE plus `rope.freq_base_swa` for the local ones. The embedding scale
 * √hidden and the soft-capping are llama.cpp's graph, not the file.
 */
const gemma3: GgufArchitecture = {
  name: 'gemma3',
  blockPrefix: /^model\.layers\.(\d+)\./,
  blockTensors: {
    ...LLAMA_BLOCK,
    ...QK_NORMS,
    'post_attention_layernorm.weight': 'post_attention_norm.weight',
    'pre_feedforward_layernorm.weight': 'ffn_norm.weight',
    'post_feedforward_layernorm.weight': 'post_ffw_norm.weight',
  },
  globalTensors: LLAMA_GLOBAL,
  skip: /\.rotary_emb(_local)?\.inv_freq$/,
  rewrite(name, shape, { tokenizerRows }) {
    if (name.endsWith('norm.weight')) return { kind: 'shift', by: 1 };
    if (name.includes('embed_tokens.weight') && tokenizerRows !== undefined && tokenizerRows < shape[0])
      return { kind: 'rows', rows: tokenizerRows };
    return null;
  },
  parameters(input, fileType) {
    const config = input.config;
    const out = textParameters('gemma3', input, fileType);
    setKey(out, 'gemma3.context_length', u32(config.max_position_embeddings as number));
    setKey(out, 'gemma3.attention.head_count', u32(config.num_attention_heads as number));
    setKey(out, 'gemma3.attention.layer_norm_rms_epsilon', f32(config.rms_norm_eps as number));
    setKey(out, 'gemma3.attention.key_length', u32(config.head_dim as number));
    setKey(out, 'gemma3.attention.value_length', u32(config.head_dim as number));
    const rope = ropeParameters(config);
    const theta = ((rope.full_attention ?? rope) as Record<string, unknown>).rope_theta ?? 1_000_000;
    setKey(out, 'gemma3.rope.freq_base', f32(theta as number));
    if (typeof config.final_logit_softcapping === 'number' && config.final_logit_softcapping !== 0)
      setKey(out, 'gemma3.final_logit_softcapping', f32(config.final_logit_softcapping));
    if (config.sliding_window_pattern !== 1)
      setKey(out, 'gemma3.attention.sliding_window', u32(config.sliding_window as number));
    setKey(out, 'gemma3.attention.head_count_kv', u32(config.num_key_value_heads as number));
    return out;
  },
  llamaVocab: false,
  configDefaults: (config) => {
    const out = { ...config };
    for (const [k, v] of Object.entries(GEMMA3_DEFAULTS))
      if (out[k] === undefined || out[k] === null) out[k] = v;
    return out;
  },
  check(config) {
    const fail = (what: string) => {
      throw new ExportError(
        `config.json: ${what}; GGUF export refuses a gemma3 file that llama.cpp would run differently from transformers`,
      );
    };
    const c = gemma3.configDefaults!(config);
    if (c.attn_logit_softcapping !== undefined && c.attn_logit_softcapping !== null)
      fail("attn_logit_softcapping is set, which Gemma 3 (and llama.cpp's converter) do not have");
    const layers = c.num_hidden_layers as number;
    // llama.cpp scales queries by 1/√head_dim (27B-shaped models: 1/√(hidden/heads))
    const scalar =
      layers === 62 ? (c.hidden_size as number) / (c.num_attention_heads as number) : (c.head_dim as number);
    if (c.query_pre_attn_scalar !== scalar)
      fail(`query_pre_attn_scalar is ${c.query_pre_attn_scalar}, llama.cpp's gemma3 uses ${scalar}`);
    // llama.cpp's gemma3: local attention on all but every 6th layer (its default sliding_window_pattern)
    const expected = Array.from({ length: layers }, (_, i) =>
      i % 6 < 5 ? 'sliding_attention' : 'full_attention',
    );
    const types = Array.isArray(c.layer_types) ? (c.layer_types as string[]) : expected;
    if (types.join() !== expected.join())
      fail(`layer_types [${types.join(', ')}] is not llama.cpp's gemma3 pattern (every 6th layer global)`);
    const local = (ropeParameters(c).sliding_attention ?? {}) as Record<string, unknown>;
    if (local.rope_type !== undefined && local.rope_type !== 'default')
      fail(`the local layers' rope type "${String(local.rope_type)}" (llama.cpp runs them with plain RoPE)`);
  },
};

/** GPT2Model: its own short key list; Conv1D weights (in × out) transposed to out × in. */
const gpt2: GgufArchitecture = {
  name: 'gpt2',
  blockPrefix: /^(?:transformer\.)?h\.(\d+)\./,
  blockTensors: {
    'ln_1.weight': 'attn_norm.weight',
    'ln_1.bias': 'attn_norm.bias',
    'attn.c_attn.weight': 'attn_qkv.weight',
    'attn.c_attn.bias': 'attn_qkv.bias',
    'attn.c_proj.weight': 'attn_output.weight',
    'attn.c_proj.bias': 'attn_output.bias',
    'ln_2.weight': 'ffn_norm.weight',
    'ln_2.bias': 'ffn_norm.bias',
    'mlp.c_fc.weight': 'ffn_up.weight',
    'mlp.c_fc.bias': 'ffn_up.bias',
    'mlp.c_proj.weight': 'ffn_down.weight',
    'mlp.c_proj.bias': 'ffn_down.bias',
  },
  globalTensors: {
    'transformer.wte.weight': 'token_embd.weight',
    'wte.weight': 'token_embd.weight',
    'transformer.wpe.weight': 'position_embd.weight',
    'wpe.weight': 'position_embd.weight',
    'transformer.ln_f.weight': 'output_norm.weight',
    'ln_f.weight': 'output_norm.weight',
    'transformer.ln_f.bias': 'output_norm.bias',
    'ln_f.bias': 'output_norm.bias',
    'lm_head.weight': 'output.weight',
  },
  skip: /\.attn\.(masked_)?bias$/,
  rewrite: (name) => (/\.(c_attn|c_proj|c_fc)\.weight$/.test(name) ? { kind: 'transpose' } : null),
  parameters({ config }, fileType) {
    const embd = config.n_embd as number;
    return [
      ['gpt2.block_count', u32(config.n_layer as number)],
      ['gpt2.context_length', u32((config.n_ctx ?? config.n_positions) as number)],
      ['gpt2.embedding_length', u32(embd)],
      ['gpt2.feed_forward_length', u32(4 * embd)],
      ['gpt2.attention.head_count', u32(config.n_head as number)],
      ['gpt2.attention.layer_norm_epsilon', f32((config.layer_norm_epsilon ?? 1e-5) as number)],
      ['general.file_type', u32(fileType)],
    ];
  },
  llamaVocab: false,
};

/** Hugging Face `model_type` → the converter's architecture (Mistral converts as `llama`, like LlamaModel does). */
export const GGUF_ARCHITECTURES: Readonly<Record<string, GgufArchitecture>> = {
  gpt2,
  llama,
  mistral: llama,
  qwen2,
  qwen3,
  smollm3,
  gemma3_text: gemma3,
};

/** Architectures the studio trains that GGUF export refuses, and why (each checked against llama.cpp's converter). */
export const GGUF_REFUSED: Readonly<Record<string, string>> = {
  gemma2:
    "llama.cpp's converter (Gemma2Model) reads the vocabulary from tokenizer.model (SentencePiece) only, which this exporter does not write",
  phi3: "llama.cpp's converter (Phi3MiniModel) needs a SentencePiece tokenizer.model unless tokenizer_config.json names GPT2Tokenizer (Phi-4), and this exporter does not write phi3's layout (fused qkv_proj and gate_up_proj, LongRoPE factor tensors)",
};

export function ggufArchitecture(modelType: string, task: string): GgufArchitecture {
  if (task !== 'causal-lm') {
    throw new ExportError(`GGUF export writes causal language models; this is a ${task} model`);
  }
  const entry = GGUF_ARCHITECTURES[modelType];
  if (!entry && GGUF_REFUSED[modelType]) {
    throw new ExportError(
      `GGUF export does not support model_type "${modelType}": ${GGUF_REFUSED[modelType]}`,
    );
  }
  if (!entry) {
    throw new ExportError(
      `GGUF export does not support model_type "${modelType}" yet (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')})`,
    );
  }
  return entry;
}

/** The GGUF name of a checkpoint tensor, or null for a tensor the converter drops. */
export function ggufTensorName(a: GgufArchitecture, hfName: string): string | null {
  if (a.skip.test(hfName)) return null;
  const m = a.blockPrefix.exec(hfName);
  if (m) {
    const rest = hfName.slice(m[0].length);
    const mapped = a.blockTensors[rest];
    if (mapped) return `blk.${m[1]}.${mapped}`;
  } else if (a.globalTensors[hfName]) {
    return a.globalTensors[hfName];
  }
  throw new ExportError(`GGUF export (${a.name}): no llama.cpp name for checkpoint tensor "${hfName}"`);
}

/** LlamaModel.permute: per head, rows [first half; second half] → interleaved pairs. */
export function permuteRows(values: Float32Array, shape: number[], heads: number): Float32Array {
  const rows = shape[0];
  const cols = shape.length > 1 ? shape.slice(1).reduce((x, y) => x * y, 1) : 1;
  const half = rows / heads / 2;
  if (!Number.isInteger(half)) throw new ExportError(`cannot permute ${rows} rows into ${heads} RoPE heads`);
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        // source row h·2·half + j·half + i goes to h·2·half + 2·i + j
        const src = (h * 2 * half + j * half + i) * cols;
        const dst = (h * 2 * half + 2 * i + j) * cols;
        out.set(values.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

export function transpose2d(values: Float32Array, shape: number[]): Float32Array {
  const [r, c] = shape;
  const out = new Float32Array(values.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = values[i * c + j];
  return out;
}
