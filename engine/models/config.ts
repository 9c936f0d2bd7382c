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

export const CONFIG_FILE = 'config.json';

/** The config.json fields every architecture has, normalised; each architecture module extends it. */
export interface ArchConfig {
  /** config.json `model_type`. */
  modelType: string;
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
  /** `max_position_embeddings` / `n_positions`. */
  maxPositions: number;
  normEps: number;
  activation: string;
  tieWordEmbeddings: boolean;
  padTokenId: number | null;
  initializerRange: number;
}

/** What the caller asked for: the task and its label count, resolved against the architecture's classes. */
export interface HeadChoice {
  task: TaskKind;
  numLabels?: number;
  /** transformers class name for the task. */
  architecture: string;
}

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

/**
 * A number field of config.json; `fallback` (transformers' default for the class) when absent or null.
 * `where` names the enclosing object in messages (`rope_parameters`).
 */
export function num(config: Record<string, unknown>, key: string, fallback?: number, where?: string): number {
  const value = config[key];
  const field = where ? `${where}.${key}` : key;
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelError(CONFIG_FILE, `missing "${field}" (needed for model_type "${config.model_type}")`);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelError(CONFIG_FILE, `"${field}" must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Upper bounds of config.json's size fields: far above any released model (the largest have ~130 layers,
 * hidden sizes of 16K–25K, vocabularies of 262K, contexts of 10M), low enough that the module tree and
 * the per-layer lists built from a config stay small. A value beyond them is refused before anything is
 * allocated from it.
 */
export const SIZE_LIMITS: Readonly<Record<string, number>> = {
  num_hidden_layers: 4096,
  n_layer: 4096,
  hidden_size: 2 ** 17,
  n_embd: 2 ** 17,
  intermediate_size: 2 ** 20,
  n_inner: 2 ** 20,
  vocab_size: 2 ** 24,
  num_attention_heads: 4096,
  n_head: 4096,
  num_key_value_heads: 4096,
  head_dim: 2 ** 14,
  max_position_embeddings: 2 ** 27,
  n_positions: 2 ** 27,
  type_vocab_size: 2 ** 16,
  sliding_window: 2 ** 27,
};

/** A positive integer field; size fields (`SIZE_LIMITS`) also bounded above. */
export function positiveInt(
  config: Record<string, unknown>,
  key: string,
  fallback?: number,
  where?: string,
): number {
  const value = num(config, key, fallback, where);
  const field = where ? `${where}.${key}` : key;
  if (!Number.isInteger(value) || value <= 0) {
    throw new ModelError(CONFIG_FILE, `"${field}" must be a positive integer, got ${value}`);
  }
  const limit = where ? undefined : SIZE_LIMITS[key];
  if (limit !== undefined && value > limit) {
    throw new ModelError(
      CONFIG_FILE,
      `"${field}" is ${value}, beyond any model the engine can build (at most ${limit})`,
    );
  }
  return value;
}

/** A boolean field; `fallback` when absent or null. */
export function flag(config: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = config[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') {
    throw new ModelError(CONFIG_FILE, `"${key}" must be true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A token id field (`pad_token_id`); the first of a list; null when absent. */
export function optionalId(config: Record<string, unknown>, key: string): number | null {
  const value = config[key];
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (Array.isArray(value) && typeof value[0] === 'number') return value[0];
  return null;
}

export function divide(a: number, b: number, aKey: string, bKey: string): number {
  if (a % b !== 0)
    throw new ModelError(CONFIG_FILE, `"${aKey}" (${a}) must be divisible by "${bKey}" (${b})`);
  return a / b;
}

/** `num_key_value_heads` (default: one per attention head), a divisor of `num_attention_heads`. */
export function kvHeads(config: Record<string, unknown>, numHeads: number): number {
  const numKvHeads = positiveInt(config, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelError(
      CONFIG_FILE,
      `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  return numKvHeads;
}

/** More labels than any classification head has; a larger count is a mistake, not a task. */
const MAX_LABELS = 2 ** 20;

/** The label count of a classification head: asked for, else config.json's `num_labels` / `id2label`, else 2. */
export function numLabelsOf(config: Record<string, unknown>, requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1 || requested > MAX_LABELS) {
      throw new ModelError(
        CONFIG_FILE,
        `numLabels must be an integer from 1 to ${MAX_LABELS}, got ${requested}`,
      );
    }
    return requested;
  }
  if (config.num_labels !== undefined && config.num_labels !== null) {
    const n = config.num_labels;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_LABELS) {
      throw new ModelError(
        CONFIG_FILE,
        `"num_labels" must be an integer from 1 to ${MAX_LABELS}, got ${JSON.stringify(n)}`,
      );
    }
    return n;
  }
  const id2label = config.id2label;
  if (id2label && typeof id2label === 'object') {
    const n = Object.keys(id2label).length;
    if (n > 0) return n;
  }
  return 2;
}
