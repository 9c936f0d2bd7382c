import type * as tf from '@tensorflow/tfjs-core';
import {
  checkPeftConfig,
  PEFT_BASE_PREFIX,
  PEFT_MODEL_PREFIX,
  parsePeftConfig,
  peftCommonConfig,
  peftTargetFields,
  stateFromPeftTensors,
} from '../peft.ts';
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
    ...peftCommonConfig('VERA', config, ctx),
    d_initial: config.dInitial,
    init_weights: config.initWeights,
    projection_prng_key: config.projectionPrngKey,
    r: config.r,
    save_projection: config.saveProjection,
    vera_dropout: config.dropout,
  };
  return { adapterConfig, tensors };
}

/** Reads a PEFT VeRA adapter into this engine's config and native state (tensors are passed through). */
export function veraFromPeft(
  adapterConfig: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): { config: VeraConfig; state: Record<string, tf.Tensor> } {
  const c = adapterConfig;
  checkPeftConfig(c, 'VERA', []);
  const config = parsePeftConfig(veraConfigSchema, {
    r: c.r ?? undefined,
    projectionPrngKey: c.projection_prng_key ?? undefined,
    saveProjection: c.save_projection ?? undefined,
    dropout: c.vera_dropout ?? undefined,
    dInitial: c.d_initial ?? undefined,
    initWeights: c.init_weights ?? undefined,
    ...peftTargetFields(c),
  });
  const state = stateFromPeftTensors(tensors, 'VeRA', moduleSuffixes, (key) => sharedKeys.includes(key));
  return { config, state };
}

export const veraPeft: PeftFormat<VeraConfig> = {
  peftType: 'VERA',
  floatFields: ['vera_dropout', 'd_initial'],
  toPeft: veraToPeft,
  fromPeft: veraFromPeft,
};
