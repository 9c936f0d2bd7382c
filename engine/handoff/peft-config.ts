import type { LoraConfig } from '../adapters/lora/config.ts';
import type { LoraxsConfig } from '../adapters/loraxs/config.ts';
import type { TargetFields } from '../adapters/targets.ts';
import type { TinyloraConfig } from '../adapters/tinylora/config.ts';
import type { TloraConfig } from '../adapters/tlora/config.ts';
import type { VeraConfig } from '../adapters/vera/config.ts';
import type { ProjectSettings } from '../common/project-schema.ts';
import { defaultTargetModules } from '../models/registry.ts';
import { HandoffError } from './errors.ts';

/**
 * The PEFT config class train.py builds and its keyword arguments (PEFT's own field names); `module` is `peft`,
 * or `studio_methods` for the PEFT custom methods the hand-off ships (TLoRA, LoRA-XS).
 */
export interface PeftConfigSpec {
  module: 'peft' | 'studio_methods';
  className: 'LoraConfig' | 'VeraConfig' | 'TinyLoraConfig' | 'TloraConfig' | 'LoraxsConfig';
  kwargs: Record<string, unknown>;
}

/**
 * Target fields in PEFT's names. No targetModules means the engine's per-architecture default, written out
 * so a PEFT release with another default still adapts the same modules.
 */
function targetKwargs(config: TargetFields, modelType: string | undefined): Record<string, unknown> {
  const targets = config.targetModules ?? (modelType ? defaultTargetModules(modelType) : null);
  const kwargs: Record<string, unknown> = {};
  if (targets) kwargs.target_modules = targets;
  if (config.excludeModules !== undefined) kwargs.exclude_modules = config.excludeModules;
  if (config.layersToTransform !== undefined) kwargs.layers_to_transform = config.layersToTransform;
  if (config.layersPattern !== undefined) kwargs.layers_pattern = config.layersPattern;
  if (config.modulesToSave !== undefined) kwargs.modules_to_save = config.modulesToSave;
  return kwargs;
}

/**
 * The project's method as a PEFT config: PEFT's own, or the hand-off's custom methods for TLoRA and LoRA-XS.
 * MoSLoRA is refused by name: a hand-off that trained something else than the project says would be worse
 * than none.
 */
export function peftConfigOf(settings: ProjectSettings, modelType: string | undefined): PeftConfigSpec {
  const { name, config } = settings.method;
  const task_type = settings.task === 'seq-cls' ? 'SEQ_CLS' : 'CAUSAL_LM';
  if (name === 'lora') {
    const c = config as LoraConfig;
    const kwargs: Record<string, unknown> = {
      task_type,
      r: c.r,
      lora_alpha: c.loraAlpha,
      lora_dropout: c.dropout,
      use_rslora: c.useRslora,
      use_dora: c.useDora,
      init_lora_weights: c.initLoraWeights,
      rank_pattern: c.rankPattern,
      alpha_pattern: c.alphaPattern,
      ...targetKwargs(c, modelType),
    };
    if (c.loraBias) kwargs.lora_bias = true;
    return { module: 'peft', className: 'LoraConfig', kwargs };
  }
  if (name === 'vera') {
    const c = config as VeraConfig;
    return {
      module: 'peft',
      className: 'VeraConfig',
      kwargs: {
        task_type,
        r: c.r,
        projection_prng_key: c.projectionPrngKey,
        save_projection: c.saveProjection,
        vera_dropout: c.dropout,
        d_initial: c.dInitial,
        init_weights: c.initWeights,
        ...targetKwargs(c, modelType),
      },
    };
  }
  if (name === 'tinylora') {
    const c = config as TinyloraConfig;
    return {
      module: 'peft',
      className: 'TinyLoraConfig',
      kwargs: {
        task_type,
        r: c.r,
        u: c.u,
        weight_tying: c.weightTying,
        projection_seed: c.projectionSeed,
        save_projection: c.saveProjection,
        init_weights: c.initWeights,
        init_v_bound: c.initVBound,
        tinylora_dropout: c.dropout,
        ...targetKwargs(c, modelType),
      },
    };
  }
  if (name === 'tlora') {
    const c = config as TloraConfig;
    return {
      module: 'studio_methods',
      className: 'TloraConfig',
      kwargs: {
        task_type,
        r: c.r,
        tlora_dropout: c.dropout,
        // The studio's default is the run seed; the frozen A and C are saved in the adapter either way.
        projection_seed: c.projectionSeed ?? settings.training.seed,
        ...targetKwargs(c, modelType),
      },
    };
  }
  if (name === 'loraxs') {
    const c = config as LoraxsConfig;
    return {
      module: 'studio_methods',
      className: 'LoraxsConfig',
      kwargs: {
        task_type,
        r: c.r,
        alpha: c.alpha,
        loraxs_dropout: c.dropout,
        init_std: c.initStd,
        seed: settings.training.seed,
        ...targetKwargs(c, modelType),
      },
    };
  }
  throw new HandoffError(
    `method "${name}" has no PEFT implementation (PEFT 0.21 has LoRA with rsLoRA/DoRA/PiSSA/OLoRA, VeRA and TinyLoRA; the hand-off adds TLoRA and LoRA-XS as PEFT custom methods), so a PEFT trainer cannot reproduce it; train it here, or switch the project to one of those methods`,
  );
}
