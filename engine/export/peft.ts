import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter, detachAdapter, methods, SEQ_CLS_HEADS, savedModuleNames } from '../adapters/index.ts';
import type {
  AdapterInstance,
  MethodDefinition,
  PeftContext,
  PeftTaskType,
  TargetModule,
} from '../adapters/types.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import type { LoadedModel, ModelSpec } from '../models/types.ts';
import { checkFinite } from '../runs/index.ts';
import { openSafetensors, parseStrictJson, type TensorData, writeSafetensors } from '../safetensors/index.ts';
import { ExportError } from './errors.ts';
import { pythonJsonDumps } from './pyjson.ts';

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';

/** Per-module PEFT keys start with this; model-level ones (VeRA's projections, TinyLoRA's v) with `base_model.`. */
export const MODULE_PREFIX = 'base_model.model.';

/** An adapter in PEFT form: config JSON object and F32 tensors under full PEFT keys. */
export interface PeftAdapter {
  adapterConfig: Record<string, unknown>;
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
}

export function peftTaskType(spec: ModelSpec): PeftTaskType {
  return spec.task === 'seq-cls' ? 'SEQ_CLS' : 'CAUSAL_LM';
}

/** The resolved targets of an instance, from the live layers (module tree order). */
export function instanceTargets(model: LoadedModel, instance: AdapterInstance): TargetModule[] {
  const targets: TargetModule[] = [];
  for (const name of model.layers.keys()) {
    if (!instance.layers.has(name)) continue;
    const layer = model.layers.get(name)!;
    targets.push({ name, kind: layer.kind, inFeatures: layer.inFeatures, outFeatures: layer.outFeatures });
  }
  return targets;
}

export function peftContext(
  model: LoadedModel,
  instance: AdapterInstance,
  baseModelNameOrPath: string,
): PeftContext {
  return {
    baseModelNameOrPath,
    taskType: peftTaskType(model.spec),
    targets: instanceTargets(model, instance),
    moduleNames: model.spec.modules.map((m) => m.name),
  };
}

/** Fields every saved PEFT config carries, as `PeftModel.save_pretrained` sets them. */
export function withBaseFields(
  config: Record<string, unknown>,
  peftType: string,
  ctx: Pick<PeftContext, 'baseModelNameOrPath' | 'taskType'>,
): Record<string, unknown> {
  return {
    auto_mapping: null,
    revision: null,
    ...config,
    base_model_name_or_path: ctx.baseModelNameOrPath,
    task_type: ctx.taskType,
    peft_type: peftType,
    inference_mode: true,
  };
}

/**
 * `modules_to_save` of an exported adapter: the adapter's own list and, for sequence classification, PEFT's head
 * names (`PeftModelForSequenceClassification` adds them to every config and loads the head from the file), with
 * the `base_model.model.<module>.weight` / `.bias` tensors: the trained copy where the adapter saves the module,
 * the model's own head otherwise. Null names when there is nothing to save.
 */
export function exportedSavedModules(
  model: LoadedModel,
  instance: AdapterInstance,
): { names: string[] | null; tensors: PeftAdapter['tensors'] } {
  const { names, modules } = exportedModulesToSave(model, instance);
  const tensors: PeftAdapter['tensors'] = {};
  const copy = (t: tf.Tensor) => ({
    shape: [...t.shape],
    data: Float32Array.from(t.dataSync() as Float32Array),
  });
  for (const name of modules) {
    const saved = instance.savedModules?.get(name);
    const layer = model.layers.get(name);
    if (!layer) throw new ExportError(`modules_to_save: ${name} is not a module of the model in memory`);
    tensors[`${MODULE_PREFIX}${name}.weight`] = saved
      ? copy(saved.weight)
      : { shape: [...layer.weight.shape], data: layer.weight.float32() };
    const bias = saved ? saved.bias : layer.bias;
    if (bias) tensors[`${MODULE_PREFIX}${name}.bias`] = copy(bias);
  }
  return { names, tensors };
}

/** The `modules_to_save` names an export writes and the modules of the model they select. */
export function exportedModulesToSave(
  model: LoadedModel,
  instance: AdapterInstance,
): { names: string[] | null; modules: string[] } {
  const own = (instance.config.modulesToSave as string[] | undefined) ?? [];
  const names = model.spec.task === 'seq-cls' ? [...new Set([...own, ...SEQ_CLS_HEADS])] : own;
  const modules = savedModuleNames(model.spec, names, instance.method);
  const adapted = modules.filter((m) => instance.layers.has(m));
  if (adapted.length > 0) {
    throw new ExportError(
      `${instance.method} adapter "${instance.name}" adapts ${adapted.join(', ')}, which PEFT saves whole as modules_to_save (the classification head) and never adapts, so PEFT would not reproduce it; leave the head out of targetModules (add it to modulesToSave to train it) or export --format merged`,
    );
  }
  return { names: names.length > 0 ? names : null, modules };
}

/** The instance's PEFT adapter, from its method's `peft` format (LoRA, DoRA, rsLoRA, VeRA, TinyLoRA). */
export function buildPeftAdapter(
  model: LoadedModel,
  instance: AdapterInstance,
  baseModelNameOrPath: string,
): PeftAdapter {
  const method = methods[instance.method] as MethodDefinition | undefined;
  if (!method?.peft) {
    throw new ExportError(
      `${instance.method} has no PEFT format (PEFT implements LoRA, VeRA and TinyLoRA); export it with --format lora (a plain LoRA conversion) or merged`,
    );
  }
  const ctx = peftContext(model, instance, baseModelNameOrPath);
  const { adapterConfig, tensors } = method.peft.toPeft(instance, ctx);
  const out: PeftAdapter['tensors'] = {};
  try {
    for (const [key, t] of Object.entries(tensors)) {
      out[key] = { shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
    }
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  const saved = exportedSavedModules(model, instance);
  return {
    adapterConfig: {
      ...withBaseFields(adapterConfig, method.peft.peftType, ctx),
      modules_to_save: saved.names,
    },
    tensors: { ...out, ...saved.tensors },
  };
}

/** The method whose PEFT format has this `peft_type`, or undefined. */
export function methodOfPeftType(peftType: unknown): MethodDefinition | undefined {
  return (Object.values(methods) as MethodDefinition[]).find((m) => m.peft?.peftType === peftType);
}

/**
 * `adapter_config.json` text exactly as PEFT writes it (`json.dumps(indent=2, sort_keys=True)`, no newline),
 * with the float fields of the method of its `peft_type`.
 */
export function adapterConfigText(config: Record<string, unknown>): string {
  return pythonJsonDumps(config, new Set(methodOfPeftType(config.peft_type)?.peft?.floatFields));
}

/** Writes `adapter_model.safetensors` (F32, metadata format=pt) and `adapter_config.json` into `dir`. */
export async function writePeftAdapter(dir: string, adapter: PeftAdapter): Promise<string[]> {
  const tensors: Record<string, TensorData> = {};
  for (const [key, t] of Object.entries(adapter.tensors))
    tensors[key] = { dtype: 'F32', shape: t.shape, data: t.data };
  const weights = join(dir, ADAPTER_WEIGHTS);
  const config = join(dir, ADAPTER_CONFIG);
  await writeSafetensors(weights, tensors, { format: 'pt' });
  await writeFileAtomic(config, adapterConfigText(adapter.adapterConfig));
  return [weights, config];
}

/** Reads `adapter_config.json` strictly (duplicate keys, non-objects and a missing `peft_type` are errors). */
export async function readAdapterConfig(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, ADAPTER_CONFIG);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch {
    throw new ExportError(
      `${path}: not found (a PEFT adapter folder holds ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS})`,
    );
  }
  let json: unknown;
  try {
    json = parseStrictJson(text, path, 'adapter config');
  } catch (error) {
    throw new ExportError((error as Error).message);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ExportError(`${path}: not a JSON object`);
  }
  const config = json as Record<string, unknown>;
  if (typeof config.peft_type !== 'string') throw new ExportError(`${path}: missing "peft_type"`);
  return config;
}

/** The module a per-module PEFT key belongs to: the longest adaptable module name it starts with. */
function moduleOfKey(key: string, moduleNames: string[]): string | null {
  const rest = key.slice(MODULE_PREFIX.length);
  let best: string | null = null;
  for (const name of moduleNames) {
    if (rest.startsWith(`${name}.`) && (best === null || name.length > best.length)) best = name;
  }
  return best;
}

export interface LoadPeftOptions {
  adapterName?: string;
  /** Seed for any tensor the method re-creates rather than reads (frozen projections not saved). */
  seed?: number;
}

/**
 * Loads a PEFT adapter folder onto `model` as a new named adapter: reads the config and F32 tensors,
 * checks that every key belongs to a module this model has, converts through the method's `fromPeft`,
 * attaches and loads the state (which checks every shape). Errors name the file and the problem.
 */
export async function loadPeftAdapter(
  model: LoadedModel,
  dir: string,
  options: LoadPeftOptions = {},
): Promise<AdapterInstance> {
  const adapterName = options.adapterName ?? 'default';
  const configPath = join(dir, ADAPTER_CONFIG);
  const weightsPath = join(dir, ADAPTER_WEIGHTS);
  const adapterConfig = await readAdapterConfig(dir);
  const peftType = adapterConfig.peft_type as string;
  const all = Object.values(methods) as MethodDefinition[];
  const method = methodOfPeftType(peftType) ?? all.find((m) => m.handoffPeft?.peftType === peftType);
  if (!method) {
    const known = all.flatMap((m) => (m.peft ? [m.peft.peftType] : [])).join(', ');
    const custom = all.flatMap((m) => (m.handoffPeft ? [m.handoffPeft.peftType] : [])).join(', ');
    throw new ExportError(
      `${configPath}: peft_type "${peftType}" is not supported (supported: ${known}; from studio handoff's custom methods: ${custom})`,
    );
  }
  const reader = (method.peft?.peftType === peftType ? method.peft : method.handoffPeft)!;
  const base =
    typeof adapterConfig.base_model_name_or_path === 'string' ? adapterConfig.base_model_name_or_path : '?';
  const foreign = `the adapter was saved for base model "${base}", this model is ${model.spec.modelType} from ${model.dir}`;

  let savedModules: string[];
  try {
    const entries = adapterConfig.modules_to_save;
    savedModules = savedModuleNames(model.spec, Array.isArray(entries) ? (entries as string[]) : undefined);
  } catch (error) {
    throw new ExportError(`${configPath}: ${(error as Error).message} (${foreign})`);
  }
  const savedKeys = new Set(
    savedModules.flatMap((m) => [`${MODULE_PREFIX}${m}.weight`, `${MODULE_PREFIX}${m}.bias`]),
  );
  const file = await openSafetensors(weightsPath).catch((error: Error) => {
    throw new ExportError(error.message);
  });
  const tensors: Record<string, tf.Tensor> = {};
  try {
    const moduleNames = [...model.layers.keys()];
    for (const key of file.keys()) {
      if (key.startsWith(MODULE_PREFIX) && moduleOfKey(key, moduleNames) === null) {
        throw new ExportError(
          `${weightsPath}: tensor "${key}" is for a module this model does not have (${foreign})`,
        );
      }
      if (!key.startsWith('base_model.')) {
        throw new ExportError(
          `${weightsPath}: tensor "${key}" does not start with "base_model." (not a PEFT adapter file)`,
        );
      }
    }
    for (const key of file.keys()) {
      const { shape } = file.info(key);
      tensors[key] = tf.tensor(checkFinite(await file.readFloat32(key), key, weightsPath), shape, 'float32');
    }
  } catch (error) {
    for (const t of Object.values(tensors)) t.dispose();
    throw error;
  } finally {
    await file.close();
  }

  // fromPeft may hand back the input tensors themselves under native keys: everything is disposed once,
  // after loadState has copied it into the adapter's variables.
  const owned = new Set<tf.Tensor>(Object.values(tensors));
  let instance: AdapterInstance | null = null;
  try {
    // modules_to_save tensors are the saved modules' own weights: native keys without the prefix.
    const adapterTensors: Record<string, tf.Tensor> = {};
    const savedState: Record<string, tf.Tensor> = {};
    for (const [key, t] of Object.entries(tensors)) {
      if (savedKeys.has(key)) savedState[key.slice(MODULE_PREFIX.length)] = t;
      else adapterTensors[key] = t;
    }
    let converted: { config: Record<string, unknown>; state: Record<string, tf.Tensor> };
    try {
      converted = reader.fromPeft(adapterConfig, adapterTensors);
    } catch (error) {
      throw new ExportError(`${dir}: ${(error as Error).message}`);
    }
    converted = { ...converted, state: { ...converted.state, ...savedState } };
    for (const t of Object.values(converted.state)) owned.add(t);
    try {
      instance = attachAdapter(model, method.name, converted.config, {
        adapterName,
        seed: options.seed ?? 0,
      });
      instance.loadState(converted.state);
    } catch (error) {
      if (instance) detachAdapter(model, adapterName);
      throw new ExportError(`${weightsPath}: ${(error as Error).message} (${foreign})`);
    }
    return instance;
  } finally {
    for (const t of owned) t.dispose();
  }
}
