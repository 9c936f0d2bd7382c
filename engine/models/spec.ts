import { type ArchConfig, archConfig } from './config.ts';
import type { AdaptableKind } from './layers.ts';
import type { ModelSpec, ModuleInfo, TaskKind } from './types.ts';

function weighted(
  name: string,
  type: string,
  shape: number[],
  bias: boolean,
  extra: Partial<ModuleInfo> = {},
): ModuleInfo {
  const size = shape.reduce((a, b) => a * b, 1);
  const info: ModuleInfo = {
    name,
    type,
    shape,
    params: size + (bias ? biasLength(type, shape) : 0),
    ...extra,
  };
  if (bias) info.hasBias = true;
  return info;
}

/** Bias length: the output features (Conv1D stores in × out, Linear out × in, norms a vector). */
function biasLength(type: string, shape: number[]): number {
  if (type === 'Conv1D') return shape[1];
  return shape[0];
}

function adaptable(
  name: string,
  kind: AdaptableKind,
  shape: number[],
  bias: boolean,
  extra: Partial<ModuleInfo> = {},
): ModuleInfo {
  const [inFeatures, outFeatures] =
    kind === 'Linear'
      ? [shape[1], shape[0]]
      : kind === 'Conv1D'
        ? [shape[0], shape[1]]
        : [shape[0], shape[1]];
  return weighted(name, kind, shape, bias, { adaptable: kind, inFeatures, outFeatures, ...extra });
}

function gpt2Modules(a: ArchConfig): ModuleInfo[] {
  const d = a.hiddenSize;
  const p = a.basePrefix;
  const mods: ModuleInfo[] = [
    adaptable(`${p}.wte`, 'Embedding', [a.vocabSize, d], false),
    adaptable(`${p}.wpe`, 'Embedding', [a.maxPositions, d], false),
  ];
  for (let i = 0; i < a.numLayers; i++) {
    const l = `${p}.h.${i}`;
    const at = { layerIndex: i };
    mods.push(
      weighted(`${l}.ln_1`, 'LayerNorm', [d], true, at),
      adaptable(`${l}.attn.c_attn`, 'Conv1D', [d, 3 * d], true, at),
      adaptable(`${l}.attn.c_proj`, 'Conv1D', [d, d], true, at),
      weighted(`${l}.ln_2`, 'LayerNorm', [d], true, at),
      adaptable(`${l}.mlp.c_fc`, 'Conv1D', [d, a.intermediateSize], true, at),
      adaptable(`${l}.mlp.c_proj`, 'Conv1D', [a.intermediateSize, d], true, at),
    );
  }
  mods.push(weighted(`${p}.ln_f`, 'LayerNorm', [d], true));
  return mods;
}

const RMS_NORM: Record<string, string> = {
  llama: 'LlamaRMSNorm',
  qwen2: 'Qwen2RMSNorm',
  mistral: 'MistralRMSNorm',
};

function llamaModules(a: ArchConfig): ModuleInfo[] {
  const d = a.hiddenSize;
  const p = a.basePrefix;
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const norm = RMS_NORM[a.modelType];
  const mods: ModuleInfo[] = [adaptable(`${p}.embed_tokens`, 'Embedding', [a.vocabSize, d], false)];
  for (let i = 0; i < a.numLayers; i++) {
    const l = `${p}.layers.${i}`;
    const at = { layerIndex: i };
    mods.push(
      adaptable(`${l}.self_attn.q_proj`, 'Linear', [q, d], a.qkvBias, at),
      adaptable(`${l}.self_attn.k_proj`, 'Linear', [kv, d], a.qkvBias, at),
      adaptable(`${l}.self_attn.v_proj`, 'Linear', [kv, d], a.qkvBias, at),
      adaptable(`${l}.self_attn.o_proj`, 'Linear', [d, q], a.oBias, at),
      adaptable(`${l}.mlp.gate_proj`, 'Linear', [a.intermediateSize, d], a.mlpBias, at),
      adaptable(`${l}.mlp.up_proj`, 'Linear', [a.intermediateSize, d], a.mlpBias, at),
      adaptable(`${l}.mlp.down_proj`, 'Linear', [d, a.intermediateSize], a.mlpBias, at),
      weighted(`${l}.input_layernorm`, norm, [d], false, at),
      weighted(`${l}.post_attention_layernorm`, norm, [d], false, at),
    );
  }
  mods.push(weighted(`${p}.norm`, norm, [d], false));
  return mods;
}

function bertModules(a: ArchConfig): ModuleInfo[] {
  const d = a.hiddenSize;
  const p = a.basePrefix;
  const e = `${p}.embeddings`;
  const mods: ModuleInfo[] = [
    adaptable(`${e}.word_embeddings`, 'Embedding', [a.vocabSize, d], false),
    adaptable(`${e}.position_embeddings`, 'Embedding', [a.maxPositions, d], false),
    adaptable(`${e}.token_type_embeddings`, 'Embedding', [a.typeVocabSize, d], false),
    weighted(`${e}.LayerNorm`, 'LayerNorm', [d], true),
  ];
  for (let i = 0; i < a.numLayers; i++) {
    const l = `${p}.encoder.layer.${i}`;
    const at = { layerIndex: i };
    mods.push(
      adaptable(`${l}.attention.self.query`, 'Linear', [d, d], true, at),
      adaptable(`${l}.attention.self.key`, 'Linear', [d, d], true, at),
      adaptable(`${l}.attention.self.value`, 'Linear', [d, d], true, at),
      adaptable(`${l}.attention.output.dense`, 'Linear', [d, d], true, at),
      weighted(`${l}.attention.output.LayerNorm`, 'LayerNorm', [d], true, at),
      adaptable(`${l}.intermediate.dense`, 'Linear', [a.intermediateSize, d], true, at),
      adaptable(`${l}.output.dense`, 'Linear', [d, a.intermediateSize], true, at),
      weighted(`${l}.output.LayerNorm`, 'LayerNorm', [d], true, at),
    );
  }
  return mods;
}

function headModules(a: ArchConfig): ModuleInfo[] {
  const d = a.hiddenSize;
  if (a.task === 'causal-lm') {
    const embedding = a.family === 'gpt2' ? `${a.basePrefix}.wte` : `${a.basePrefix}.embed_tokens`;
    return [
      adaptable('lm_head', 'Linear', [a.vocabSize, d], false, {
        isOutputHead: true,
        ...(a.tieWordEmbeddings ? { tiedTo: embedding } : {}),
      }),
    ];
  }
  const labels = a.numLabels ?? 2;
  if (a.family !== 'bert') return [adaptable('score', 'Linear', [labels, d], false, { isOutputHead: true })];
  if (a.modelType === 'bert') {
    return [
      adaptable(`${a.basePrefix}.pooler.dense`, 'Linear', [d, d], true),
      adaptable('classifier', 'Linear', [labels, d], true, { isOutputHead: true }),
    ];
  }
  // RoBERTa's `classifier` is a container: PEFT's all-linear excludes only a module named exactly
  // `classifier`, so its inner Linear layers stay eligible.
  return [
    adaptable('classifier.dense', 'Linear', [d, d], true),
    adaptable('classifier.out_proj', 'Linear', [labels, d], true),
  ];
}

/** The module tree and parameter count of a model, from config.json alone. */
export function specFromConfig(
  config: Record<string, unknown>,
  opts: { task?: TaskKind; numLabels?: number } = {},
): ModelSpec {
  const a = archConfig(config, opts);
  const body = a.family === 'gpt2' ? gpt2Modules(a) : a.family === 'llama' ? llamaModules(a) : bertModules(a);
  const modules = [...body, ...headModules(a)];
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
