import { z } from 'zod';
import { refineTargetFields, targetFields } from '../targets.ts';

/** LoRA-XS (MohammadrezaBanaei/LoRA-XS; not in PEFT); defaults as its README's suggestion (r 32, alpha 64). */
export const loraxsConfigSchema = z
  .strictObject({
    r: z
      .number()
      .int('r must be a whole number')
      .min(1, 'r must be at least 1')
      .default(32)
      .describe('rank of the frozen truncated SVD of each base weight; the trainable core R is r × r'),
    alpha: z
      .number()
      .positive('alpha must be positive')
      .default(64)
      .describe('scaling numerator: ΔW = (alpha / r)·B·R·A'),
    dropout: z
      .number()
      .min(0, 'dropout must be in [0, 1)')
      .lt(1, 'dropout must be in [0, 1)')
      .default(0)
      .describe('dropout on the adapter input'),
    initStd: z
      .number()
      .min(0, 'initStd must be ≥ 0')
      .default(1e-5)
      .describe('std of the normal initialisation of R (the reference uses 1e-5)'),
    ...targetFields,
  })
  .superRefine(refineTargetFields);

export type LoraxsConfig = z.output<typeof loraxsConfigSchema>;

/** Native per-module keys, named as the reference code's modules (`<module>.<suffix>`). */
export const loraxsSuffixes = {
  a: 'lora_A.weight',
  b: 'lora_B.weight',
  core: 'lora_latent_mapping.weight',
} as const;
