import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import { AdapterStateError } from './instance.ts';
import { minimalTargetModules, type TargetFields } from './targets.ts';
import type { PeftContext } from './types.ts';

/** Prefix of per-module keys in PEFT files: `base_model.model.<module>.<suffix>`. */
export const PEFT_MODEL_PREFIX = 'base_model.model.';
/** Prefix of model-level keys in PEFT files (VeRA's `base_model.vera_A`, TinyLoRA's `base_model.tinylora_v.0`). */
export const PEFT_BASE_PREFIX = 'base_model.';
/** PEFT compresses target lists of this many names or more to minimal suffixes (`MIN_TARGET_MODULES_FOR_OPTIMIZATION`). */
export const MIN_TARGET_MODULES_FOR_OPTIMIZATION = 20;

/** A file key without `base_model.model.` (per-module) or `base_model.` (model-level). */
export function stripPeftPrefix(key: string): string {
  if (key.startsWith(PEFT_MODEL_PREFIX)) return key.slice(PEFT_MODEL_PREFIX.length);
  if (key.startsWith(PEFT_BASE_PREFIX)) return key.slice(PEFT_BASE_PREFIX.length);
  return key;
}

/**
 * `target_modules` as PEFT saves it after resolution: a regex string stays a string; no value becomes the
 * architecture default (the distinct last name parts of the targets); `all-linear` becomes the targeted
 * names; lists of 20 or more names are shortened to minimal suffixes when the module names are known.
 */
export function peftTargetModules(
  targetModules: string[] | string | undefined,
  ctx: PeftContext,
): string[] | string {
  if (typeof targetModules === 'string' && targetModules.toLowerCase() !== 'all-linear') return targetModules;
  let names: string[];
  if (targetModules === undefined) {
    names = [...new Set(ctx.targets.map((t) => t.name.split('.').pop()!))];
  } else if (typeof targetModules === 'string') {
    names = ctx.targets.map((t) => t.name);
  } else {
    names = [...targetModules];
  }
  if (names.length >= MIN_TARGET_MODULES_FOR_OPTIMIZATION && ctx.moduleNames) {
    const targetNames = ctx.targets.map((t) => t.name);
    const short = minimalTargetModules(targetNames, ctx.moduleNames);
    if (short.length < names.length) return short;
  }
  return names;
}

/** A module name as a literal regex (for rank_pattern/alpha_pattern keys). */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The `adapter_config.json` fields every method writes alike (PEFT's defaults for the fields this engine does
 * not use); a method adds its own. `exclude_modules` only when set, so PEFT releases without it still load.
 */
export function peftCommonConfig(
  peftType: string,
  config: TargetFields,
  ctx: PeftContext,
): Record<string, unknown> {
  const common: Record<string, unknown> = {
    auto_mapping: null,
    base_model_name_or_path: ctx.baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: ctx.targets.some((t) => t.kind === 'Conv1D'),
    inference_mode: true,
    layers_pattern: config.layersPattern ?? null,
    layers_to_transform: config.layersToTransform ?? null,
    modules_to_save: config.modulesToSave ?? null,
    peft_type: peftType,
    revision: null,
    target_modules: peftTargetModules(config.targetModules, ctx),
    task_type: ctx.taskType,
  };
  if (config.excludeModules !== undefined) common.exclude_modules = config.excludeModules;
  return common;
}

/** A config field counts as set unless it is absent, null, false or empty. */
function isSet(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value as object).length > 0;
  return true;
}

/**
 * Refuses an `adapter_config.json` of another PEFT type, one that sets a field this engine cannot reproduce,
 * or one that trains base-model biases.
 */
export function checkPeftConfig(
  c: Record<string, unknown>,
  peftType: string,
  unsupportedFields: readonly string[],
): void {
  if (c.peft_type !== peftType) {
    throw new AdapterStateError(
      `adapter_config.json: peft_type is ${JSON.stringify(c.peft_type)}, expected "${peftType}"`,
    );
  }
  for (const field of unsupportedFields) {
    if (isSet(c[field])) {
      throw new AdapterStateError(
        `adapter_config.json: ${field} = ${JSON.stringify(c[field])} is not supported by this engine`,
      );
    }
  }
  if (c.bias !== undefined && c.bias !== 'none') {
    throw new AdapterStateError(
      `adapter_config.json: bias = "${c.bias}" trains base-model biases, which this engine does not load`,
    );
  }
}

/** The target fields of an `adapter_config.json`, camelCase (null read as absent). */
export function peftTargetFields(c: Record<string, unknown>): Record<keyof TargetFields, unknown> {
  return {
    targetModules: c.target_modules ?? undefined,
    excludeModules: c.exclude_modules ?? undefined,
    layersToTransform: c.layers_to_transform ?? undefined,
    layersPattern: c.layers_pattern ?? undefined,
    modulesToSave: c.modules_to_save ?? undefined,
  };
}

/** Validates a method config read from `adapter_config.json`; the first problem becomes the error. */
export function parsePeftConfig<T>(schema: z.ZodType<T>, input: Record<string, unknown>): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AdapterStateError(`adapter_config.json: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * The native state of a PEFT file's tensors (passed through, keys without the PEFT prefixes): a per-module key
 * `base_model.model.<module>.<suffix>` must end in one of `moduleSuffixes`; a model-level key (`base_model.<key>`
 * or unprefixed) must be a shared key or end in a module suffix. Any other tensor is refused by name.
 */
export function stateFromPeftTensors(
  tensors: Record<string, tf.Tensor>,
  methodLabel: string,
  moduleSuffixes: readonly string[],
  isSharedKey: (key: string) => boolean,
): Record<string, tf.Tensor> {
  const isModuleKey = (key: string) => moduleSuffixes.some((s) => key.endsWith(`.${s}`));
  const state: Record<string, tf.Tensor> = {};
  for (const [fileKey, tensor] of Object.entries(tensors)) {
    let key: string | null = null;
    if (fileKey.startsWith(PEFT_MODEL_PREFIX)) {
      const rest = fileKey.slice(PEFT_MODEL_PREFIX.length);
      if (isModuleKey(rest)) key = rest;
    } else {
      const rest = fileKey.startsWith(PEFT_BASE_PREFIX) ? fileKey.slice(PEFT_BASE_PREFIX.length) : fileKey;
      if (isSharedKey(rest) || isModuleKey(rest)) key = rest;
    }
    if (key === null) {
      throw new AdapterStateError(`adapter_model.safetensors: unexpected ${methodLabel} tensor "${fileKey}"`);
    }
    state[key] = tensor;
  }
  return state;
}

/**
 * The native state of a per-module-only PEFT file whose suffixes the method names differently
 * (`fileSuffixes`: file suffix → native suffix); other tensors are refused by name as in `stateFromPeftTensors`.
 */
export function renamedPeftState(
  tensors: Record<string, tf.Tensor>,
  methodLabel: string,
  fileSuffixes: Readonly<Record<string, string>>,
): Record<string, tf.Tensor> {
  const read = stateFromPeftTensors(tensors, methodLabel, Object.keys(fileSuffixes), () => false);
  const state: Record<string, tf.Tensor> = {};
  for (const [key, tensor] of Object.entries(read)) {
    const dot = key.lastIndexOf('.');
    state[`${key.slice(0, dot)}.${fileSuffixes[key.slice(dot + 1)]}`] = tensor;
  }
  return state;
}
