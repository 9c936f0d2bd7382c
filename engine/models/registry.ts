import { bert } from './architectures/bert.ts';
import { gemma2 } from './architectures/gemma2.ts';
import { gemma3Text } from './architectures/gemma3-text.ts';
import { gpt2 } from './architectures/gpt2.ts';
import { llama } from './architectures/llama.ts';
import { mistral } from './architectures/mistral.ts';
import { phi3 } from './architectures/phi3.ts';
import { qwen2 } from './architectures/qwen2.ts';
import { qwen3 } from './architectures/qwen3.ts';
import { roberta } from './architectures/roberta.ts';
import { smollm3 } from './architectures/smollm3.ts';
import { type ArchConfig, CONFIG_FILE, ModelError, numLabelsOf } from './config.ts';
import type { Architecture } from './network.ts';
import type { ModelSpec, TaskKind } from './types.ts';

/** Every architecture the engine builds, by config.json `model_type`. */
const architectures = {
  gpt2,
  llama,
  qwen2,
  mistral,
  bert,
  roberta,
  qwen3,
  gemma2,
  gemma3_text: gemma3Text,
  phi3,
  smollm3,
} satisfies Record<string, Architecture>;

export type SupportedModelType = keyof typeof architectures;
export const supportedModelTypes = Object.keys(architectures) as SupportedModelType[];

const TASK_NAMES: Record<TaskKind, string> = {
  'causal-lm': 'causal language modelling (causal-lm)',
  'seq-cls': 'sequence classification (seq-cls)',
};

/** The architecture module of a config.json; a clear error for a missing or unknown `model_type`. */
export function architectureOf(config: Record<string, unknown>): Architecture {
  const modelType = config.model_type;
  if (typeof modelType !== 'string') {
    throw new ModelError(CONFIG_FILE, `missing "model_type" (supported: ${supportedModelTypes.join(', ')})`);
  }
  if (!Object.hasOwn(architectures, modelType)) {
    throw new ModelError(
      CONFIG_FILE,
      `model_type "${modelType}" is not supported (supported: ${supportedModelTypes.join(', ')})`,
    );
  }
  return architectures[modelType as SupportedModelType];
}

/** The task a config was saved for: sequence classification when its class says so (or when it is all it has). */
export function defaultTask(config: Record<string, unknown>): TaskKind {
  const type = config.model_type;
  if (typeof type === 'string' && Object.hasOwn(architectures, type)) {
    const classes = architectures[type as SupportedModelType].classes as Partial<Record<TaskKind, string>>;
    if (!classes['causal-lm']) return 'seq-cls';
  }
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
  const architecture = architectureOf(config);
  const task = opts.task ?? defaultTask(config);
  if (task !== 'causal-lm' && task !== 'seq-cls') {
    throw new ModelError(CONFIG_FILE, `unknown task "${task}" (expected causal-lm or seq-cls)`);
  }
  const className = architecture.classes[task];
  if (!className) {
    const tasks = (Object.keys(architecture.classes) as TaskKind[]).map((t) => TASK_NAMES[t]).join(', ');
    throw new ModelError(CONFIG_FILE, `${config.model_type} is supported for ${tasks} only`);
  }
  const numLabels = task === 'seq-cls' ? numLabelsOf(config, opts.numLabels) : undefined;
  return architecture.parse(config, { task, numLabels, architecture: className });
}

function buildSpec(
  config: Record<string, unknown>,
  opts: { task?: TaskKind; numLabels?: number },
): ModelSpec {
  const a = archConfig(config, opts);
  const modules = architectureOf(config).modules(a);
  const numParameters = modules.reduce((sum, m) => sum + (m.tiedTo ? 0 : m.params), 0);
  return {
    modelType: a.modelType,
    architecture: a.architecture,
    task: a.task,
    ...(a.numLabels !== undefined ? { numLabels: a.numLabels } : {}),
    vocabSize: a.vocabSize,
    hiddenSize: a.hiddenSize,
    numLayers: a.numLayers,
    numParameters,
    modules,
    config,
  };
}

/** More parameters than any model the engine can load (the largest open dense models have ~0.4·10¹²). */
const MAX_PARAMETERS = 1e13;

/** The size fields of config.json, in the order one is blamed for a parameter count that is too large. */
const SIZE_FIELDS = [
  'num_hidden_layers',
  'n_layer',
  'vocab_size',
  'intermediate_size',
  'n_inner',
  'hidden_size',
  'n_embd',
  'max_position_embeddings',
  'n_positions',
  'type_vocab_size',
  'num_attention_heads',
  'n_head',
  'num_key_value_heads',
  'head_dim',
];

/**
 * The size field to name when the parameters `count` counts exceed `limit`: the first that, set to 1, brings
 * the count within the limit, else the one whose reduction lowers it most.
 */
function culprit(
  config: Record<string, unknown>,
  count: (c: Record<string, unknown>) => number,
  limit: number,
): string | null {
  let best: { key: string; count: number } | null = null;
  for (const key of SIZE_FIELDS) {
    if (typeof config[key] !== 'number' || config[key] === 1) continue;
    let reduced: number;
    try {
      reduced = count({ ...config, [key]: 1 });
    } catch {
      // 1 is not a valid value of this field here (hidden_size must divide by the heads): not the one
      continue;
    }
    if (reduced <= limit) return key;
    if (!best || reduced < best.count) best = { key, count: reduced };
  }
  return best?.key ?? null;
}

/**
 * The error for a config whose parameter count (`count` of it: `implied`) exceeds `limit`, naming the size
 * field to blame; `against` says what the limit is, in words.
 */
export function sizeError(
  config: Record<string, unknown>,
  count: (c: Record<string, unknown>) => number,
  implied: number,
  limit: number,
  against: string,
): ModelError {
  const key = culprit(config, count, limit);
  const field = key ? `"${key}" (${config[key]})` : 'its size fields';
  return new ModelError(
    CONFIG_FILE,
    `${field} implies ${implied.toLocaleString('en-US')} parameters, more than ${against}`,
  );
}

/**
 * The module tree and parameter count of a model, from config.json alone. Sizes are bounded first: each
 * size field by `SIZE_LIMITS`, the parameter count by what any loadable model has.
 */
export function specFromConfig(
  config: Record<string, unknown>,
  opts: { task?: TaskKind; numLabels?: number } = {},
): ModelSpec {
  const spec = buildSpec(config, opts);
  if (spec.numParameters > MAX_PARAMETERS) {
    const count = (c: Record<string, unknown>) => buildSpec(c, opts).numParameters;
    throw sizeError(
      config,
      count,
      spec.numParameters,
      MAX_PARAMETERS,
      `any model the engine can load (${MAX_PARAMETERS.toLocaleString('en-US')})`,
    );
  }
  return spec;
}

/** PEFT's default LoRA targets of a model_type, null when PEFT has none (or the type is not ours). */
export function defaultTargetModules(modelType: string): string[] | null {
  if (!Object.hasOwn(architectures, modelType)) return null;
  const targets = architectures[modelType as SupportedModelType].defaultTargets;
  return targets ? [...targets] : null;
}
