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
import { type TinyloraConfig, tinyloraConfigSchema } from './config.ts';

const moduleSuffixes = ['tinylora_A', 'tinylora_B', 'tinylora_P'];
const vKey = /^tinylora_v\.(\d+)$/;

/**
 * PEFT TinyLoRA export: `base_model.model.<module>.tinylora_A/B` (always), `.tinylora_P` (with
 * saveProjection) and `base_model.tinylora_v.<group>`; native keys are the same without the prefixes.
 */
export function tinyloraToPeft(
  instance: AdapterInstance,
  ctx: PeftContext,
): { adapterConfig: Record<string, unknown>; tensors: Record<string, tf.Tensor> } {
  const config = instance.config as TinyloraConfig;
  const tensors: Record<string, tf.Tensor> = {};
  for (const [key, tensor] of Object.entries(instance.state())) {
    if (vKey.test(key)) {
      tensors[`${PEFT_BASE_PREFIX}${key}`] = tensor;
    } else if (!config.saveProjection && key.endsWith('.tinylora_P')) {
      tensor.dispose();
    } else {
      tensors[`${PEFT_MODEL_PREFIX}${key}`] = tensor;
    }
  }
  const adapterConfig: Record<string, unknown> = {
    ...peftCommonConfig('TINYLORA', config, ctx),
    init_v_bound: config.initVBound,
    init_weights: config.initWeights,
    projection_seed: config.projectionSeed,
    r: config.r,
    save_projection: config.saveProjection,
    tinylora_dropout: config.dropout,
    u: config.u,
    weight_tying: config.weightTying,
  };
  return { adapterConfig, tensors };
}

/** Reads a PEFT TinyLoRA adapter into this engine's config and native state (tensors are passed through). */
export function tinyloraFromPeft(
  adapterConfig: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): { config: TinyloraConfig; state: Record<string, tf.Tensor> } {
  const c = adapterConfig;
  checkPeftConfig(c, 'TINYLORA', []);
  const config = parsePeftConfig(tinyloraConfigSchema, {
    r: c.r ?? undefined,
    u: c.u ?? undefined,
    weightTying: c.weight_tying ?? undefined,
    projectionSeed: c.projection_seed ?? undefined,
    saveProjection: c.save_projection ?? undefined,
    // init_weights only decides the initial v, which the file overrides; PEFT's false (uninitialised) loads as true.
    initWeights: c.init_weights === 'uniform' ? 'uniform' : true,
    initVBound: c.init_v_bound ?? undefined,
    dropout: c.tinylora_dropout ?? undefined,
    ...peftTargetFields(c),
  });
  const state = stateFromPeftTensors(tensors, 'TinyLoRA', moduleSuffixes, (key) => vKey.test(key));
  return { config, state };
}

export const tinyloraPeft: PeftFormat<TinyloraConfig> = {
  peftType: 'TINYLORA',
  floatFields: ['weight_tying', 'init_v_bound', 'tinylora_dropout'],
  toPeft: tinyloraToPeft,
  fromPeft: tinyloraFromPeft,
};
