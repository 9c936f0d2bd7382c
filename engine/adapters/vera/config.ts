import { z } from 'zod';
import { refineTargetFields, targetFields } from '../targets.ts';

/** PEFT's `VeraConfig`, camelCase; defaults as PEFT's. */
export const veraConfigSchema = z
  .strictObject({
    r: z
      .number()
      .int('r must be a whole number')
      .min(1, 'r must be at least 1')
      .default(256)
      .describe('rank of the shared frozen random projections vera_A (r × in_max) and vera_B (out_max × r)'),
    projectionPrngKey: z
      .number()
      .int('projectionPrngKey must be a whole number')
      .min(0, 'projectionPrngKey must be ≥ 0')
      .default(0)
      .describe('seed of torch.Generator().manual_seed(key) that draws vera_A then vera_B'),
    saveProjection: z
      .boolean()
      .default(true)
      .describe('write vera_A / vera_B into PEFT files (otherwise they are regenerated from the key)'),
    dropout: z
      .number()
      .min(0, 'dropout must be in [0, 1)')
      .lt(1, 'dropout must be in [0, 1)')
      .default(0)
      .describe('dropout on the adapter input (vera_dropout)'),
    dInitial: z.number().default(0.1).describe('initial value of every entry of λ_d (d_initial)'),
    initWeights: z
      .boolean()
      .default(true)
      .describe('true: λ_b = 0, λ_d = dInitial (a no-op at start); false: λ_b = 1, λ_d ~ N(0, 1)'),
    ...targetFields,
  })
  .superRefine(refineTargetFields);

export type VeraConfig = z.output<typeof veraConfigSchema>;

/** The shared projection sizes: PEFT's `_find_dim`, the element-wise max of (out, in) over the targets. */
export function projectionDims(targets: readonly { inFeatures: number; outFeatures: number }[]): {
  inMax: number;
  outMax: number;
} {
  return {
    inMax: Math.max(0, ...targets.map((t) => t.inFeatures)),
    outMax: Math.max(0, ...targets.map((t) => t.outFeatures)),
  };
}

/** PEFT's `_kaiming_init` bound: √3·(√2/√fan_in) with fan_in = shape[1]. */
export function veraBound(fanIn: number): number {
  return Math.sqrt(3) * (Math.SQRT2 / Math.sqrt(fanIn));
}
