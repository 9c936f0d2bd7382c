import { z } from 'zod';
import { refineTargetFields, targetFields } from '../targets.ts';

/** TLoRA (itanvir/tlora, not in PEFT); defaults as the reference code (rank 32, dropout 0.5). */
export const tloraConfigSchema = z
  .strictObject({
    r: z
      .number()
      .int('r must be a whole number')
      .min(1, 'r must be at least 1')
      .default(32)
      .describe('rank: frozen A (in × r), trainable B (r × r), frozen C (r × out)'),
    dropout: z
      .number()
      .min(0, 'dropout must be in [0, 1)')
      .lt(1, 'dropout must be in [0, 1)')
      .default(0.5)
      .describe('dropout on the scaled adapter output α·x·A·B·C (the reference uses 0.5)'),
    projectionSeed: z
      .number()
      .int('projectionSeed must be a whole number')
      .min(0, 'projectionSeed must be ≥ 0')
      .max(2 ** 32 - 1, 'projectionSeed must fit in 32 bits')
      .optional()
      .describe(
        'seed of the frozen A and C (per module index); default: the run seed, recorded in the adapter config',
      ),
    ...targetFields,
  })
  .superRefine(refineTargetFields);

export type TloraConfig = z.output<typeof tloraConfigSchema>;

/** PyTorch's kaiming_normal_(t, a=√5) std for a 2-D tensor: √(1/3)/√fan_in with fan_in = t.size(1). */
export function kaimingNormalStd(fanIn: number): number {
  return Math.sqrt(1 / 3) / Math.sqrt(fanIn);
}

/** Native per-module keys, named as the reference's parameters (`<module>.<suffix>`). */
export const tloraSuffixes = {
  a: 'random_A',
  b: 'lora_B',
  c: 'random_C',
  scaling: 'lora_scaling',
} as const;
