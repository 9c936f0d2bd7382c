import type { TaskKind } from '../models/types.ts';
import { minimalTargetModules } from './targets.ts';
import type { PeftContext, PeftTaskType } from './types.ts';

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

export function peftTaskType(task: TaskKind): PeftTaskType {
  return task === 'seq-cls' ? 'SEQ_CLS' : 'CAUSAL_LM';
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
