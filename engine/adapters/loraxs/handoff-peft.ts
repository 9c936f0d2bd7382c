import type * as tf from '@tensorflow/tfjs-core';
import { checkPeftConfig, parsePeftConfig, peftTargetFields, renamedPeftState } from '../peft.ts';
import type { PeftReader } from '../types.ts';
import { type LoraxsConfig, loraxsConfigSchema, loraxsSuffixes } from './config.ts';

/** The hand-off's PEFT custom method (engine/handoff/studio_methods.py) names each native tensor so. */
const fileSuffixes: Record<string, string> = {
  loraxs_A: loraxsSuffixes.a,
  loraxs_B: loraxsSuffixes.b,
  loraxs_R: loraxsSuffixes.core,
};

/**
 * Reads a LoRA-XS adapter saved by the hand-off's PEFT custom method (peft_type `LORAXS`): the frozen SVD
 * factors come from the file (the trainer's float32 SVD, not recomputed here).
 */
export function loraxsFromHandoffPeft(
  adapterConfig: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): { config: LoraxsConfig; state: Record<string, tf.Tensor> } {
  const c = adapterConfig;
  checkPeftConfig(c, 'LORAXS', []);
  const config = parsePeftConfig(loraxsConfigSchema, {
    r: c.r ?? undefined,
    alpha: c.alpha ?? undefined,
    dropout: c.loraxs_dropout ?? undefined,
    initStd: c.init_std ?? undefined,
    ...peftTargetFields(c),
  });
  const state = renamedPeftState(tensors, 'LoRA-XS', fileSuffixes);
  return { config, state };
}

export const loraxsHandoffPeft: PeftReader<LoraxsConfig> = {
  peftType: 'LORAXS',
  fromPeft: loraxsFromHandoffPeft,
};
