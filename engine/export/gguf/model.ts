import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import { readOptionalJson } from '../../models/config.ts';
import { archConfig, defaultTask } from '../../models/registry.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../safetensors/index.ts';
import { ExportError } from '../errors.ts';
import {
  type ArchInput,
  type GgufArchitecture,
  ggufArchitecture,
  ggufTensorName,
  permuteRows,
  transpose2d,
} from './arch.ts';
import {
  BLOCK,
  f32,
  GGML_QUANT_VERSION,
  type GgmlTypeName,
  type GgufTensorInfo,
  type GgufValue,
  i32,
  str,
  u32,
} from './format.ts';
import { ggufVocab } from './vocab.ts';

/** `--quant`: the converter's outtypes plus llama-quantize's Q4_K_M. */
export const GGUF_QUANTS = ['f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'] as const;
export type GgufQuant = (typeof GGUF_QUANTS)[number];

/** `general.file_type` (llama_ftype). */
export const FILE_TYPE: Record<GgufQuant, number> = { f32: 0, f16: 1, bf16: 32, q8_0: 7, q4_k_m: 15 };
const CONVERTER_TYPE: Record<Exclude<GgufQuant, 'q4_k_m'>, GgmlTypeName> = {
  f32: 'F32',
  f16: 'F16',
  bf16: 'BF16',
  q8_0: 'Q8_0',
};

/** One tensor of the planned file: where its values come from and how the converter rewrites them. */
export interface PlannedTensor extends GgufTensorInfo {
  /** The checkpoint tensor, or null for one the converter generates (`rope_freqs.weight`). */
  source: string | null;
  rewrite: ReturnType<GgufArchitecture['rewrite']>;
  /** Generated values (rope_freqs). */
  values?: Float32Array;
}

export interface GgufModelPlan {
  architecture: GgufArchitecture;
  metadata: [string, GgufValue][];
  tensors: PlannedTensor[];
  chatTemplate: string | null;
  /** Token strings by id (for the Modelfile's stop tokens). */
  tokens: string[];
  eosTokenId: number | null;
}

function isBlockNorm(name: string): boolean {
  return name.endsWith('_norm.weight');
}

/** The converter's per-tensor type for one of its outtypes (prepare_tensors). */
function converterType(name: string, shape: number[], quant: Exclude<GgufQuant, 'q4_k_m'>): GgmlTypeName {
  if (shape.length <= 1 || isBlockNorm(name)) return 'F32';
  if (name === 'position_embd.weight' || name === 'token_types.weight' || !name.endsWith('.weight'))
    return 'F32';
  const type = CONVERTER_TYPE[quant];
  // gguf.quants raises QuantError for rows that are not whole blocks; the converter falls back to F16.
  if (shape[shape.length - 1] % BLOCK[type].size !== 0) return 'F16';
  return type;
}

function moreBits(i: number, n: number): boolean {
  return i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;
}

function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

/**
 * llama-quantize's Q4_K_M on the converter's F32 file (llama-quant.cpp without an importance matrix): tensors
 * in its order (non-block tensors, then block by block, each by name), Q4_K by default, Q6_K for the output
 * (and tied token embeddings), for attn_v/attn_qkv and ffn_down where `use_more_bits`, and its fallbacks for
 * rows that are not whole 256-blocks (Q4_K → Q5_0, Q6_K → Q8_0, then F16).
 */
function q4kmTypes(
  tensors: PlannedTensor[],
  architecture: GgufArchitecture,
  input: ArchInput,
): PlannedTensor[] {
  if (architecture.is70B?.(input.arch)) {
    throw new ExportError(
      `q4_k_m for a model llama.cpp classes as 70B (${architecture.name}, ${input.arch.numLayers} layers) uses Q5_K for attn_v, which this exporter does not write; choose q8_0`,
    );
  }
  const { arch } = input;
  const ordered = [...tensors].sort((a, b) => {
    const la = layerOf(a.name);
    const lb = layerOf(b.name);
    return la !== lb ? la - lb : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  const tied = !ordered.some((t) => t.name === 'output.weight');
  const nAttnV = ordered.filter(
    (t) => t.name.includes('attn_v.weight') || t.name.includes('attn_qkv.weight'),
  ).length;
  let iAttnV = 0;
  let iFfnDown = 0;
  return ordered.map((t) => {
    const { name, shape } = t;
    const quantizable =
      shape.length >= 2 &&
      name.endsWith('weight') &&
      !name.includes('_norm.weight') &&
      name !== 'position_embd.weight' &&
      name !== 'token_types.weight';
    if (!quantizable) return { ...t, type: 'F32' as GgmlTypeName };
    const nx = shape[shape.length - 1];
    let type: GgmlTypeName = 'Q4_K';
    if (name === 'output.weight' || (tied && name === 'token_embd.weight')) {
      type = nx % 256 !== 0 ? 'Q8_0' : 'Q6_K';
    } else if (name.includes('attn_v.weight') || name.includes('attn_qkv.weight')) {
      if (moreBits(iAttnV, nAttnV)) type = 'Q6_K';
      iAttnV++;
    } else if (name.includes('ffn_down')) {
      if (moreBits(iFfnDown, arch.numLayers)) type = 'Q6_K';
      iFfnDown++;
    }
    if (nx % BLOCK[type].size !== 0) {
      type = type === 'Q4_K' ? 'Q5_0' : type === 'Q6_K' ? 'Q8_0' : type;
      if (nx % BLOCK[type].size !== 0) type = 'F16';
    }
    return { ...t, type };
  });
}

/** gguf.utility.model_weight_count_rounded_notation(n, min_digits = 2). */
export function sizeLabel(n: number): string {
  const [scaled, suffix] =
    n > 1e12 ? [n * 1e-12, 'T'] : n > 1e9 ? [n * 1e-9, 'B'] : n > 1e6 ? [n * 1e-6, 'M'] : [n * 1e-3, 'K'];
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  const rounded = diff > 0.5 || (diff === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  const digits = String(rounded).replace(/^0+/, '').length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}

/** Metadata.load's sampling defaults from generation_config.json, in set_gguf_meta_model's order. */
function samplingKeys(gen: Record<string, unknown> | null): [string, GgufValue][] {
  if (!gen) return [];
  const out: [string, GgufValue][] = [];
  const num = (k: string) => (typeof gen[k] === 'number' ? (gen[k] as number) : undefined);
  const put = (key: string, v: number | undefined, int: boolean) => {
    if (v !== undefined) out.push([`general.sampling.${key}`, int ? i32(v) : f32(v)]);
  };
  if (typeof gen.sequence === 'string') out.push(['general.sampling.sequence', str(gen.sequence)]);
  put('top_k', num('top_k'), true);
  put('top_p', num('top_p'), false);
  put('min_p', num('min_p'), false);
  put('xtc_probability', num('xtc_probability'), false);
  put('xtc_threshold', num('xtc_threshold'), false);
  put('temp', num('temperature'), false);
  put('penalty_last_n', num('penalty_last_n'), true);
  put('penalty_repeat', num('penalty_repeat') ?? num('repetition_penalty'), false);
  put('mirostat', num('mirostat'), true);
  put('mirostat_tau', num('mirostat_tau'), false);
  put('mirostat_eta', num('mirostat_eta'), false);
  return out;
}

/** LlamaModel.generate_extra_tensors for rope_type llama3: per-frequency factors, in float32 as torch computes them. */
function llama3RopeFreqs(config: Record<string, unknown>, rope: Record<string, unknown>): Float32Array {
  const fr = Math.fround;
  const base = (rope.rope_theta as number | undefined) ?? 10000;
  const dim =
    typeof config.head_dim === 'number'
      ? config.head_dim
      : Math.floor((config.hidden_size as number) / (config.num_attention_heads as number));
  const factor = (rope.factor as number | undefined) ?? 8;
  const low = (rope.low_freq_factor as number | undefined) ?? 1;
  const high = (rope.high_freq_factor as number | undefined) ?? 4;
  const oldCtx = (rope.original_max_position_embeddings as number | undefined) ?? 8192;
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  const out: number[] = [];
  for (let i = 0; i < dim; i += 2) {
    const freq = fr(1 / fr(fr(base) ** fr(i / dim)));
    const wavelen = fr((2 * Math.PI) / freq);
    if (wavelen < highWavelen) out.push(1);
    else if (wavelen > lowWavelen) out.push(factor);
    else {
      const smooth = fr(fr(fr(oldCtx / wavelen) - low) / (high - low));
      out.push(fr(1 / fr(fr(fr(1 - smooth) / factor) + smooth)));
    }
  }
  return Float32Array.from(out);
}

export interface PlanOptions {
  /** `general.name` (default: the config's `_name_or_path` basename, else the model folder's name). */
  name?: string;
}

/**
 * Everything about the GGUF file of a model folder except the tensor values: metadata in the converter's key
 * order, and each tensor's GGUF name, shape (after the converter's rewrites) and type.
 */
export async function planGgufModel(
  dir: string,
  checkpoint: { keys(): string[]; info(key: string): { shape: number[] } },
  quant: GgufQuant,
  options: PlanOptions = {},
): Promise<GgufModelPlan> {
  if (!(GGUF_QUANTS as readonly string[]).includes(quant)) {
    throw new ExportError(`unknown GGUF quantisation "${quant}"; choose one of ${GGUF_QUANTS.join(', ')}`);
  }
  const raw = (await readOptionalJson(`${dir}/config.json`)) ?? {};
  const architecture = ggufArchitecture(String(raw.model_type), defaultTask(raw));
  const input = await archInput(dir, raw, architecture);
  const { config, arch } = input;
  let tensors: PlannedTensor[] = [];
  const rope = { ...((config.rope_parameters ?? config.rope_scaling ?? {}) as Record<string, unknown>) };
  if (rope.rope_theta === undefined) rope.rope_theta = config.rope_theta;
  const ropeType = rope.rope_type ?? rope.type;
  if (architecture.name === 'llama' && typeof ropeType === 'string' && ropeType.toLowerCase() === 'llama3') {
    const values = llama3RopeFreqs(config, rope);
    tensors.push({
      name: 'rope_freqs.weight',
      shape: [values.length],
      type: 'F32',
      source: null,
      rewrite: null,
      values,
    });
  }
  for (const key of checkpoint.keys()) {
    const name = ggufTensorName(architecture, key);
    if (name === null) continue;
    const hfShape = checkpoint.info(key).shape;
    const rewrite = architecture.rewrite(key, hfShape, input);
    const shape =
      rewrite?.kind === 'transpose'
        ? [hfShape[1], hfShape[0]]
        : rewrite?.kind === 'rows'
          ? [rewrite.rows, ...hfShape.slice(1)]
          : [...hfShape];
    tensors.push({ name, shape, type: 'F32', source: key, rewrite });
  }
  const fileQuant = quant === 'q4_k_m' ? 'f32' : quant;
  tensors = tensors.map((t) => ({ ...t, type: converterType(t.name, t.shape, fileQuant) }));
  const vocab = await ggufVocab(dir, config, arch.vocabSize, architecture.llamaVocab);
  const total = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  const generation = await readOptionalJson(`${dir}/generation_config.json`);
  const nameOrPath =
    typeof config._name_or_path === 'string' && config._name_or_path.trim() !== ''
      ? config._name_or_path
      : null;
  const name = options.name ?? basename(nameOrPath ?? dir);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', str(architecture.name)],
    ['general.type', str('model')],
    ...samplingKeys(generation),
    ['general.name', str(name)],
    ['general.size_label', str(sizeLabel(total))],
    ...architecture.parameters(input, FILE_TYPE[fileQuant]),
    ['general.quantization_version', u32(GGML_QUANT_VERSION)],
    ...vocab.metadata,
  ];
  if (quant === 'q4_k_m') {
    // llama-quantize copies the KV pairs and sets these two again, which moves them to the end.
    const moved = metadata.filter(([k]) => k !== 'general.quantization_version' && k !== 'general.file_type');
    moved.push(
      ['general.quantization_version', u32(GGML_QUANT_VERSION)],
      ['general.file_type', u32(FILE_TYPE.q4_k_m)],
    );
    return {
      architecture,
      metadata: moved,
      tensors: q4kmTypes(tensors, architecture, input),
      chatTemplate: vocab.chatTemplate,
      tokens: vocab.tokens,
      eosTokenId: vocab.eosTokenId,
    };
  }
  return {
    architecture,
    metadata,
    tensors,
    chatTemplate: vocab.chatTemplate,
    tokens: vocab.tokens,
    eosTokenId: vocab.eosTokenId,
  };
}

/**
 * What the converter reads of a model folder besides tensors: transformers' config (its defaults filled in), our
 * normalised config, and tokenizer.json's row count. Refuses what the converter would read differently (a
 * SentencePiece tokenizer.model, which it prefers) and what llama.cpp would run differently (`check`).
 */
export async function archInput(
  dir: string,
  raw: Record<string, unknown>,
  architecture: GgufArchitecture,
): Promise<ArchInput> {
  const config = architecture.configDefaults?.(raw) ?? raw;
  architecture.check?.(config);
  if (architecture.name !== 'gpt2') {
    const spm = join(dir, 'tokenizer.model');
    const present = await fs.stat(spm).then(
      () => true,
      () => false,
    );
    if (present) {
      throw new ExportError(
        `${spm}: llama.cpp's converter reads this SentencePiece model before tokenizer.json, and GGUF export does not write SentencePiece vocabularies; export from a folder with tokenizer.json only`,
      );
    }
  }
  const tokenizer = (await readOptionalJson(join(dir, 'tokenizer.json'))) as {
    model?: { vocab?: Record<string, number> };
    added_tokens?: unknown[];
  } | null;
  const tokenizerRows = tokenizer?.model?.vocab
    ? Object.keys(tokenizer.model.vocab).length + (tokenizer.added_tokens?.length ?? 0)
    : undefined;
  return { config, arch: archConfig(raw, { task: 'causal-lm' }), tokenizerRows };
}

/** `values` rounded to a checkpoint dtype, as torch's arithmetic in that dtype leaves them. */
function inDtype(values: Float32Array, dtype: string | undefined): Float32Array {
  if (dtype === 'BF16') return bf16ToF32(f32ToBf16(values));
  if (dtype === 'F16') return f16ToF32(f32ToF16(values));
  return values;
}

/**
 * A planned tensor's float32 values from its checkpoint values (HF orientation, stored as `dtype`), rewritten
 * as the converter does.
 */
export function rewriteValues(
  t: PlannedTensor,
  values: Float32Array,
  hfShape: number[],
  dtype?: string,
): Float32Array {
  const rewrite = t.rewrite;
  if (!rewrite) return values;
  switch (rewrite.kind) {
    case 'transpose':
      return transpose2d(values, hfShape);
    case 'permute':
      return permuteRows(values, hfShape, rewrite.heads);
    case 'shift':
      return inDtype(
        values.map((v) => v + rewrite.by),
        dtype,
      );
    case 'rows':
      return values.slice(0, rewrite.rows * (values.length / hfShape[0]));
  }
}
