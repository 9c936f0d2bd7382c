import type * as tf from '@tensorflow/tfjs-core';
import { checkPeftConfig, parsePeftConfig, peftTargetFields, renamedPeftState } from '../peft.ts';
import type { PeftReader } from '../types.ts';
import { type TloraConfig, tloraConfigSchema, tloraSuffixes } from './config.ts';

/** The hand-off's PEFT custom method (engine/handoff/studio_methods.py) names each native tensor so. */
const fileSuffixes: Record<string, string> = {
  tlora_A: tloraSuffixes.a,
  tlora_B: tloraSuffixes.b,
  tlora_C: tloraSuffixes.c,
  tlora_alpha: tloraSuffixes.scaling,
};

/**
 * Reads a TLoRA adapter saved by the hand-off's PEFT custom method (peft_type `TLORA`): the frozen A and C come
 * from the file, so nothing is regenerated from the seed.
 */
export function tloraFromHandoffPeft(
  adapterConfig: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): { config: TloraConfig; state: Record<string, tf.Tensor> } {
  const c = adapterConfig;
  checkPeftConfig(c, 'TLORA', []);
  const config = parsePeftConfig(tloraConfigSchema, {
    r: c.r ?? undefined,
    dropout: c.tlora_dropout ?? undefined,
    projectionSeed: c.projection_seed ?? undefined,
    ...peftTargetFields(c),
  });
  const state = renamedPeftState(tensors, 'TLoRA', fileSuffixes);
  return { config, state };
}

export const tloraHandoffPeft: PeftReader<TloraConfig> = {
  peftType: 'TLORA',
  fromPeft: tloraFromHandoffPeft,
};
