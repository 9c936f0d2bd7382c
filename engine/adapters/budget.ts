import type { ModelSpec } from '../models/types.ts';
import { estimateMemory, type MemoryEstimate, type MemoryOptions } from './memory.ts';
import { PEFT_BASE_PREFIX, PEFT_MODEL_PREFIX } from './peft.ts';
import { getMethod, parseMethodConfig } from './registry.ts';
import { methodTargets, SEQ_CLS_HEADS, savedModuleTensors, type TargetFields } from './targets.ts';
import type { MethodName, TargetModule, TensorCount } from './types.ts';

export interface BudgetOptions extends Partial<MemoryOptions> {
  /** Gradient checkpointing in the memory estimate's `total` (both totals are always given). */
  checkpointing?: boolean;
}

export interface ModuleBudget extends TargetModule {
  trainable: number;
  frozen: number;
  tensors: TensorCount[];
}

/** Bytes of each export format's weights file (null: the format does not exist for this adapter). */
export interface FileSizes {
  /** `adapter_model.safetensors` as PEFT writes it (F32, header included): exact for PEFT's key layout. */
  peft: number | null;
  /** A plain PEFT LoRA adapter from `lowRankFactors` (null when the update is not low-rank, e.g. DoRA). */
  lora: number | null;
  /** This engine's checkpoint `adapter.safetensors` (every adapter tensor, F32, native keys). */
  native: number;
  /** The merged model in the checkpoint's dtype (`torch_dtype`), tensor data only. */
  merged: number;
}

export interface Budget {
  method: MethodName;
  config: Record<string, unknown>;
  model: { modelType: string; architecture: string; task: string; numParameters: number };
  targets: ModuleBudget[];
  /** Model-level tensors shared by modules (counted once). */
  shared: TensorCount[];
  /** The trainable copies of `modulesToSave` modules (in `trainable`). */
  savedModules: TensorCount[];
  trainable: number;
  /** Frozen adapter tensors (random projections, SVD factors), not in `trainable`. */
  frozen: number;
  /** PEFT's "all params": the base model plus the trainable adapter parameters. */
  allParameters: number;
  /** 100 · trainable / allParameters, as `print_trainable_parameters`. */
  trainablePercent: number;
  /** PEFT's `print_trainable_parameters` line. */
  peftLine: string;
  files: FileSizes;
  memory: MemoryEstimate;
}

const F32 = 4;

/**
 * Trainable parameters, file sizes and a memory estimate for a method on a model, from its module tree
 * (config.json alone). Counts follow PEFT: shared tensors once, frozen buffers reported separately.
 */
export function computeBudget(
  spec: ModelSpec,
  method: MethodName | string,
  config: unknown,
  options: BudgetOptions = {},
): Budget {
  const definition = getMethod(method);
  const parsed = parseMethodConfig(definition.name, config);
  const targets = methodTargets(spec, definition, parsed as TargetFields);
  const counted = definition.count(targets, parsed);
  const byModule = new Map(counted.perModule.map((m) => [m.module, m]));
  const modules: ModuleBudget[] = targets.map((t) => {
    const m = byModule.get(t.name);
    return { ...t, trainable: m?.trainable ?? 0, frozen: m?.frozen ?? 0, tensors: m?.tensors ?? [] };
  });
  // modulesToSave copies train whole; PEFT files of seq-cls adapters always carry the head (PEFT adds it).
  const own = (parsed as TargetFields).modulesToSave;
  const savedModules = savedModuleTensors(spec, own, definition.name);
  const exported =
    spec.task === 'seq-cls'
      ? savedModuleTensors(spec, [...new Set([...(own ?? []), ...SEQ_CLS_HEADS])])
      : savedModules;
  const savedEntries = (list: TensorCount[], prefix: string) =>
    list.map((t) => ({ key: `${prefix}${t.name}`, shape: t.shape }));
  const trainable =
    counted.trainable + savedModules.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const frozen = counted.frozen;
  const allParameters = spec.numParameters + trainable;
  const trainablePercent = (100 * trainable) / allParameters;

  const perModuleEntries = (prefix: string) =>
    modules.flatMap((m) => m.tensors.map((t) => ({ key: `${prefix}${m.name}.${t.name}`, shape: t.shape })));
  const sharedEntries = (prefix: string) =>
    counted.shared.map((t) => ({ key: `${prefix}${t.name}`, shape: t.shape }));

  const peft = definition.peft
    ? safetensorsSize(
        [
          ...perModuleEntries(PEFT_MODEL_PREFIX),
          ...sharedEntries(PEFT_BASE_PREFIX),
          ...savedEntries(exported, PEFT_MODEL_PREFIX),
        ],
        { format: 'pt' },
      )
    : null;
  let lora: number | null = null;
  if (definition.loraConversionRank) {
    const ranks = targets.map((t) => definition.loraConversionRank!(t, parsed));
    if (ranks.every((k) => k !== null)) {
      lora = safetensorsSize(
        targets
          .flatMap((t, i) => {
            const k = ranks[i]!;
            const key = `${PEFT_MODEL_PREFIX}${t.name}`;
            return t.kind === 'Embedding'
              ? [
                  { key: `${key}.lora_embedding_A`, shape: [k, t.inFeatures] },
                  { key: `${key}.lora_embedding_B`, shape: [t.outFeatures, k] },
                ]
              : [
                  { key: `${key}.lora_A.weight`, shape: [k, t.inFeatures] },
                  { key: `${key}.lora_B.weight`, shape: [t.outFeatures, k] },
                ];
          })
          .concat(savedEntries(exported, PEFT_MODEL_PREFIX)),
        { format: 'pt' },
      );
    }
  }
  const native = safetensorsSize(
    [...perModuleEntries(''), ...sharedEntries(''), ...savedEntries(savedModules, '')],
    {},
  );
  const merged = spec.numParameters * checkpointDtypeBytes(spec.config);

  const memory = estimateMemory(
    spec,
    {
      targets,
      perModule: new Map(counted.perModule.map((m) => [m.module, m.trainable + m.frozen])),
      trainable,
      frozen,
    },
    { ...options, batchSize: options.batchSize ?? 1, seqLen: options.seqLen ?? 512 },
    options.checkpointing ?? false,
  );

  return {
    method: definition.name,
    config: parsed,
    model: {
      modelType: spec.modelType,
      architecture: spec.architecture,
      task: spec.task,
      numParameters: spec.numParameters,
    },
    targets: modules,
    shared: counted.shared,
    savedModules,
    trainable,
    frozen,
    allParameters,
    trainablePercent,
    peftLine: `trainable params: ${group(trainable)} || all params: ${group(allParameters)} || trainable%: ${trainablePercent.toFixed(4)}`,
    files: { peft, lora, native, merged },
    memory,
  };
}

/** Thousands separators as Python's `{:,d}`. */
function group(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * The size of a float32 safetensors file as the reference writer lays it out: 8-byte length, compact JSON
 * header (`__metadata__` first, then tensors sorted by key, each with dtype, shape and data offsets) padded
 * with spaces to a multiple of 8, then the data.
 */
export function safetensorsSize(
  entries: { key: string; shape: number[] }[],
  metadata: Record<string, string>,
  bytesPerValue = F32,
): number {
  const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  let offset = 0;
  const parts: string[] = [];
  for (const { key, shape } of sorted) {
    const bytes = shape.reduce((a, b) => a * b, 1) * bytesPerValue;
    parts.push(
      `${JSON.stringify(key)}:{"dtype":"F32","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`,
    );
    offset += bytes;
  }
  const meta = Object.keys(metadata).length > 0 ? [`"__metadata__":${JSON.stringify(metadata)}`] : [];
  const header = `{${[...meta, ...parts].join(',')}}`;
  const headerBytes = Buffer.byteLength(header, 'utf8');
  return 8 + headerBytes + ((8 - (headerBytes % 8)) % 8) + offset;
}

function checkpointDtypeBytes(config: Record<string, unknown>): number {
  const dtype = config.torch_dtype ?? config.dtype;
  return dtype === 'bfloat16' || dtype === 'float16' ? 2 : 4;
}
