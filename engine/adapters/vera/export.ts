import type * as tf from '@tensorflow/tfjs-core';
import { AdapterStateError } from '../instance.ts';
import { PEFT_BASE_PREFIX, PEFT_MODEL_PREFIX, peftTargetModules } from '../peft.ts';
import type { AdapterInstance, PeftContext, PeftFormat } from '../types.ts';
import { type VeraConfig, veraConfigSchema } from './config.ts';

const moduleSuffixes = ['vera_lambda_b', 'vera_lambda_d'];
const sharedKeys = ['vera_A', 'vera_B'];

/**
 * PEFT VeRA export: `base_model.model.<module>.vera_lambda_b/d` and, with saveProjection,
 * `base_model.vera_A` / `base_model.vera_B`; native keys are the same without the prefixes.
 */
export function veraToPeft(
  instance: AdapterInstance,
  ctx: PeftContext,
): { adapterConfig: Record<string, unknown>; tensors: Record<string, tf.Tensor> } {
  const config = instance.config as VeraConfig;
  const tensors: Record<string, tf.Tensor> = {};
  for (const [key, tensor] of Object.entries(instance.state())) {
    if (sharedKeys.includes(key)) {
      if (config.saveProjection) tensors[`${PEFT_BASE_PREFIX}${key}`] = tensor;
      else tensor.dispose();
    } else {
      tensors[`${PEFT_MODEL_PREFIX}${key}`] = tensor;
    }
  }
  const adapterConfig: Record<string, unknown> = {
    auto_mapping: null,
    base_model_name_or_path: ctx.baseModelNameOrPath,
    bias: 'none',
    d_initial: config.dInitial,
    fan_in_fan_out: ctx.targets.some((t) => t.kind === 'Conv1D'),
    inference_mode: true,
    init_weights: config.initWeights,
    layers_pattern: config.layersPattern ?? null,
    layers_to_transform: config.layersToTransform ?? null,
    modules_to_save: null,
    peft_type: 'VERA',
    projection_prng_key: config.projectionPrngKey,
    r: config.r,
    revision: null,
    save_projection: config.saveProjection,
    target_modules: peftTargetModules(config.targetModules, ctx),
    task_type: ctx.taskType,
    vera_dropout: config.dropout,
  };
  if (config.excludeModules !== undefined) adapterConfig.exclude_modules = config.excludeModules;
  return { adapterConfig, tensors };
}

/** Reads a PEFT VeRA adapter into this engine's config and native state (tensors are passed through). */
export function veraFromPeft(
  adapterConfig: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): { config: VeraConfig; state: Record<string, tf.Tensor> } {
  const c = adapterConfig;
  if (c.peft_type !== 'VERA') {
    throw new AdapterStateError(
      `adapter_config.json: peft_type is ${JSON.stringify(c.peft_type)}, expected "VERA"`,
    );
  }
  const modulesToSave = c.modules_to_save;
  if (
    modulesToSave !== undefined &&
    modulesToSave !== null &&
    !(Array.isArray(modulesToSave) && modulesToSave.length === 0)
  ) {
    throw new AdapterStateError(
      `adapter_config.json: modules_to_save = ${JSON.stringify(modulesToSave)} is not supported by this engine`,
    );
  }
  if (c.bias !== undefined && c.bias !== 'none') {
    throw new AdapterStateError(
      `adapter_config.json: bias = "${c.bias}" trains base-model biases, which this engine does not load`,
    );
  }
  const parsed = veraConfigSchema.safeParse({
    r: c.r ?? undefined,
    projectionPrngKey: c.projection_prng_key ?? undefined,
    saveProjection: c.save_projection ?? undefined,
    dropout: c.vera_dropout ?? undefined,
    dInitial: c.d_initial ?? undefined,
    initWeights: c.init_weights ?? undefined,
    targetModules: c.target_modules ?? undefined,
    excludeModules: c.exclude_modules ?? undefined,
    layersToTransform: c.layers_to_transform ?? undefined,
    layersPattern: c.layers_pattern ?? undefined,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AdapterStateError(`adapter_config.json: ${issue.path.join('.')}: ${issue.message}`);
  }
  const state: Record<string, tf.Tensor> = {};
  for (const [fileKey, tensor] of Object.entries(tensors)) {
    let key: string | null = null;
    if (fileKey.startsWith(PEFT_MODEL_PREFIX)) {
      const rest = fileKey.slice(PEFT_MODEL_PREFIX.length);
      if (moduleSuffixes.some((s) => rest.endsWith(`.${s}`))) key = rest;
    } else {
      const rest = fileKey.startsWith(PEFT_BASE_PREFIX) ? fileKey.slice(PEFT_BASE_PREFIX.length) : fileKey;
      if (sharedKeys.includes(rest) || moduleSuffixes.some((s) => rest.endsWith(`.${s}`))) key = rest;
    }
    if (key === null)
      throw new AdapterStateError(`adapter_model.safetensors: unexpected VeRA tensor "${fileKey}"`);
    state[key] = tensor;
  }
  return { config: parsed.data, state };
}

export const veraPeft: PeftFormat<VeraConfig> = {
  peftType: 'VERA',
  toPeft: veraToPeft,
  fromPeft: veraFromPeft,
};
