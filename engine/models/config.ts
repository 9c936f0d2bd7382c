import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { StudioError } from '../common/errors.ts';
import type { TaskKind } from '../common/project-schema.ts';

/** A problem with a model folder or its files; the message names the file. */
export class ModelError extends StudioError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super('invalid_input', `${file}: ${problem}`);
    this.name = 'ModelError';
  }
}

export const supportedModelTypes = ['gpt2', 'llama', 'qwen2', 'mistral', 'bert', 'roberta'] as const;
export type SupportedModelType = (typeof supportedModelTypes)[number];

export type Family = 'gpt2' | 'llama' | 'bert';

export type RopeScaling =
  | { kind: 'none' }
  | { kind: 'linear'; factor: number }
  | {
      kind: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

/** The config.json fields the engine uses, normalised across architectures. */
export interface ArchConfig {
  modelType: SupportedModelType;
  family: Family;
  task: TaskKind;
  numLabels?: number;
  /** transformers class name, e.g. `LlamaForCausalLM`. */
  architecture: string;
  /** The base model attribute: `transformer`, `model`, `bert`, `roberta`. */
  basePrefix: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  normEps: number;
  activation: string;
  tieWordEmbeddings: boolean;
  /** q/k/v (and o for llama's attention_bias) projections carry a bias. */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  /** Mistral's sliding attention window (keys further back than this are masked). */
  slidingWindow: number | null;
  typeVocabSize: number;
  padTokenId: number | null;
  initializerRange: number;
}

const CONFIG_FILE = 'config.json';

/** Reads `config.json` from a model folder (or a path to the JSON file itself). */
export async function readModelConfig(dirOrConfigJson: string): Promise<Record<string, unknown>> {
  const path = dirOrConfigJson.endsWith('.json') ? dirOrConfigJson : join(dirOrConfigJson, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ModelError(path, 'file not found (a model folder needs a config.json)');
    if (code === 'ENOTDIR' || code === 'EISDIR')
      throw new ModelError(path, 'not a model folder or config file');
    throw new ModelError(path, (error as Error).message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelError(path, `not valid JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelError(path, 'expected a JSON object');
  }
  return json as Record<string, unknown>;
}

/** Reads an optional JSON file of a model folder; null when absent. */
export async function readOptionalJson(path: string): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ModelError(path, (error as Error).message);
  }
  try {
    const json = JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new Error('expected an object');
    return json as Record<string, unknown>;
  } catch (error) {
    throw new ModelError(path, `not valid JSON (${(error as Error).message})`);
  }
}

function num(config: Record<string, unknown>, key: string, fallback?: number): number {
  const value = config[key];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelError(CONFIG_FILE, `missing "${key}" (needed for model_type "${config.model_type}")`);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelError(CONFIG_FILE, `"${key}" must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function positiveInt(config: Record<string, unknown>, key: string, fallback?: number): number {
  const value = num(config, key, fallback);
  if (!Number.isInteger(value) || value <= 0) {
    throw new ModelError(CONFIG_FILE, `"${key}" must be a positive integer, got ${value}`);
  }
  return value;
}

function optionalId(config: Record<string, unknown>, key: string): number | null {
  const value = config[key];
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (Array.isArray(value) && typeof value[0] === 'number') return value[0];
  return null;
}

function ropeScalingOf(config: Record<string, unknown>): RopeScaling {
  const raw = config.rope_scaling;
  if (raw === undefined || raw === null) return { kind: 'none' };
  if (typeof raw !== 'object') throw new ModelError(CONFIG_FILE, '"rope_scaling" must be an object or null');
  const scaling = raw as Record<string, unknown>;
  const kind = (scaling.rope_type ?? scaling.type) as string | undefined;
  if (kind === 'default') return { kind: 'none' };
  const factor = num(scaling, 'factor');
  if (kind === 'linear') return { kind: 'linear', factor };
  if (kind === 'llama3') {
    return {
      kind: 'llama3',
      factor,
      lowFreqFactor: num(scaling, 'low_freq_factor'),
      highFreqFactor: num(scaling, 'high_freq_factor'),
      originalMaxPositions: num(scaling, 'original_max_position_embeddings'),
    };
  }
  throw new ModelError(
    CONFIG_FILE,
    `rope_scaling type "${kind}" is not supported (supported: none, linear, llama3)`,
  );
}

function numLabelsOf(config: Record<string, unknown>, requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1) {
      throw new ModelError(CONFIG_FILE, `numLabels must be a positive integer, got ${requested}`);
    }
    return requested;
  }
  if (typeof config.num_labels === 'number') return config.num_labels;
  const id2label = config.id2label;
  if (id2label && typeof id2label === 'object') {
    const n = Object.keys(id2label).length;
    if (n > 0) return n;
  }
  return 2;
}

const CLASS_PREFIX: Record<SupportedModelType, string> = {
  gpt2: 'GPT2',
  llama: 'Llama',
  qwen2: 'Qwen2',
  mistral: 'Mistral',
  bert: 'Bert',
  roberta: 'Roberta',
};

/** The task a config was saved for: sequence classification when its class says so. */
export function defaultTask(config: Record<string, unknown>): TaskKind {
  const type = config.model_type;
  if (type === 'bert' || type === 'roberta') return 'seq-cls';
  const archs = Array.isArray(config.architectures) ? (config.architectures as unknown[]) : [];
  return archs.some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification'))
    ? 'seq-cls'
    : 'causal-lm';
}

/** Normalises a config.json for the engine; throws a clear error for unsupported or incomplete configs. */
export function archConfig(
  config: Record<string, unknown>,
  opts: { task?: TaskKind; numLabels?: number } = {},
): ArchConfig {
  const modelType = config.model_type;
  if (typeof modelType !== 'string') {
    throw new ModelError(CONFIG_FILE, `missing "model_type" (supported: ${supportedModelTypes.join(', ')})`);
  }
  if (!(supportedModelTypes as readonly string[]).includes(modelType)) {
    throw new ModelError(
      CONFIG_FILE,
      `model_type "${modelType}" is not supported (supported: ${supportedModelTypes.join(', ')})`,
    );
  }
  const type = modelType as SupportedModelType;
  const task = opts.task ?? defaultTask(config);
  if (task !== 'causal-lm' && task !== 'seq-cls') {
    throw new ModelError(CONFIG_FILE, `unknown task "${task}" (expected causal-lm or seq-cls)`);
  }
  if ((type === 'bert' || type === 'roberta') && task !== 'seq-cls') {
    throw new ModelError(CONFIG_FILE, `${type} is supported for sequence classification (seq-cls) only`);
  }
  const numLabels = task === 'seq-cls' ? numLabelsOf(config, opts.numLabels) : undefined;
  const suffix =
    task === 'seq-cls' ? 'ForSequenceClassification' : type === 'gpt2' ? 'LMHeadModel' : 'ForCausalLM';
  const architecture = CLASS_PREFIX[type] + suffix;
  const padTokenId = optionalId(config, 'pad_token_id');

  if (type === 'gpt2') {
    if (config.scale_attn_weights === false || config.scale_attn_by_inverse_layer_idx === true) {
      throw new ModelError(
        CONFIG_FILE,
        'GPT-2 attention scaling options scale_attn_weights=false / scale_attn_by_inverse_layer_idx=true are not supported',
      );
    }
    const hiddenSize = positiveInt(config, 'n_embd');
    const numHeads = positiveInt(config, 'n_head');
    return {
      modelType: type,
      family: 'gpt2',
      task,
      numLabels,
      architecture,
      basePrefix: 'transformer',
      vocabSize: positiveInt(config, 'vocab_size'),
      hiddenSize,
      numLayers: positiveInt(config, 'n_layer'),
      numHeads,
      numKvHeads: numHeads,
      headDim: divide(hiddenSize, numHeads, 'n_embd', 'n_head'),
      intermediateSize: positiveInt(config, 'n_inner', 4 * hiddenSize),
      maxPositions: positiveInt(config, 'n_positions'),
      normEps: num(config, 'layer_norm_epsilon', 1e-5),
      activation: String(config.activation_function ?? 'gelu_new'),
      tieWordEmbeddings: config.tie_word_embeddings !== false,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      ropeTheta: 0,
      ropeScaling: { kind: 'none' },
      slidingWindow: null,
      typeVocabSize: 0,
      padTokenId,
      initializerRange: num(config, 'initializer_range', 0.02),
    };
  }
  if (type === 'bert' || type === 'roberta') {
    const hiddenSize = positiveInt(config, 'hidden_size');
    const numHeads = positiveInt(config, 'num_attention_heads');
    const positionType = config.position_embedding_type ?? 'absolute';
    if (positionType !== 'absolute') {
      throw new ModelError(
        CONFIG_FILE,
        `position_embedding_type "${positionType}" is not supported (supported: absolute)`,
      );
    }
    return {
      modelType: type,
      family: 'bert',
      task,
      numLabels,
      architecture,
      basePrefix: type,
      vocabSize: positiveInt(config, 'vocab_size'),
      hiddenSize,
      numLayers: positiveInt(config, 'num_hidden_layers'),
      numHeads,
      numKvHeads: numHeads,
      headDim: divide(hiddenSize, numHeads, 'hidden_size', 'num_attention_heads'),
      intermediateSize: positiveInt(config, 'intermediate_size'),
      maxPositions: positiveInt(config, 'max_position_embeddings'),
      normEps: num(config, 'layer_norm_eps', 1e-12),
      activation: String(config.hidden_act ?? 'gelu'),
      tieWordEmbeddings: false,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      ropeTheta: 0,
      ropeScaling: { kind: 'none' },
      slidingWindow: null,
      typeVocabSize: positiveInt(config, 'type_vocab_size', 2),
      padTokenId: padTokenId ?? (type === 'roberta' ? 1 : 0),
      initializerRange: num(config, 'initializer_range', 0.02),
    };
  }
  const hiddenSize = positiveInt(config, 'hidden_size');
  const numHeads = positiveInt(config, 'num_attention_heads');
  const numKvHeads = positiveInt(config, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelError(
      CONFIG_FILE,
      `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  const headDim =
    config.head_dim === undefined || config.head_dim === null
      ? divide(hiddenSize, numHeads, 'hidden_size', 'num_attention_heads')
      : positiveInt(config, 'head_dim');
  if (headDim % 2 !== 0) throw new ModelError(CONFIG_FILE, `head_dim ${headDim} must be even for RoPE`);
  const partial = config.partial_rotary_factor;
  if (typeof partial === 'number' && partial !== 1) {
    throw new ModelError(CONFIG_FILE, `partial_rotary_factor ${partial} is not supported (only 1)`);
  }
  if (type === 'qwen2' && config.use_sliding_window === true) {
    throw new ModelError(CONFIG_FILE, 'Qwen2 with use_sliding_window=true is not supported');
  }
  const attentionBias = config.attention_bias === true;
  const sliding =
    type === 'mistral' && typeof config.sliding_window === 'number' ? config.sliding_window : null;
  return {
    modelType: type,
    family: 'llama',
    task,
    numLabels,
    architecture,
    basePrefix: 'model',
    vocabSize: positiveInt(config, 'vocab_size'),
    hiddenSize,
    numLayers: positiveInt(config, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: positiveInt(config, 'intermediate_size'),
    maxPositions: positiveInt(config, 'max_position_embeddings', 2048),
    normEps: num(config, 'rms_norm_eps', 1e-6),
    activation: String(config.hidden_act ?? 'silu'),
    // LlamaConfig, Qwen2Config and MistralConfig all default to untied output embeddings
    tieWordEmbeddings: config.tie_word_embeddings === true,
    qkvBias: type === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: config.mlp_bias === true,
    ropeTheta: num(config, 'rope_theta', 10000),
    ropeScaling: ropeScalingOf(config),
    slidingWindow: sliding,
    typeVocabSize: 0,
    padTokenId,
    initializerRange: num(config, 'initializer_range', 0.02),
  };
}

function divide(a: number, b: number, aKey: string, bKey: string): number {
  if (a % b !== 0)
    throw new ModelError(CONFIG_FILE, `"${aKey}" (${a}) must be divisible by "${bKey}" (${b})`);
  return a / b;
}
