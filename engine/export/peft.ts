import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter, detachAdapter, methods } from '../adapters/index.ts';
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

/** PEFT config fields that are Python floats (written `0.0`, not `0`). */
export const PEFT_FLOAT_FIELDS: ReadonlySet<string> = new Set([
  'lora_dropout',
  'vera_dropout',
  'd_initial',
  'weight_tying',
  'init_v_bound',
  'tinylora_dropout',
]);

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
  return { adapterConfig: withBaseFields(adapterConfig, method.peft.peftType, ctx), tensors: out };
}

/** `adapter_config.json` text exactly as PEFT writes it (`json.dumps(indent=2, sort_keys=True)`, no newline). */
export function adapterConfigText(config: Record<string, unknown>): string {
  return pythonJsonDumps(config, PEFT_FLOAT_FIELDS);
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
  const method = (Object.values(methods) as MethodDefinition[]).find((m) => m.peft?.peftType === peftType);
  if (!method) {
    const known = (Object.values(methods) as MethodDefinition[])
      .flatMap((m) => (m.peft ? [m.peft.peftType] : []))
      .join(', ');
    throw new ExportError(`${configPath}: peft_type "${peftType}" is not supported (supported: ${known})`);
  }
  const base =
    typeof adapterConfig.base_model_name_or_path === 'string' ? adapterConfig.base_model_name_or_path : '?';
  const foreign = `the adapter was saved for base model "${base}", this model is ${model.spec.modelType} from ${model.dir}`;

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
    let converted: { config: Record<string, unknown>; state: Record<string, tf.Tensor> };
    try {
      converted = method.peft!.fromPeft(adapterConfig, tensors);
    } catch (error) {
      throw new ExportError(`${dir}: ${(error as Error).message}`);
    }
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
