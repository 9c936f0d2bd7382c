import { z } from 'zod';
import { refineTargetFields, targetFields } from '../targets.ts';

/** PEFT's `TinyLoraConfig`, camelCase; defaults as PEFT's. */
export const tinyloraConfigSchema = z
  .strictObject({
    r: z
      .number()
      .int('r must be a whole number')
      .min(1, 'r must be at least 1')
      .default(2)
      .describe('rank of the frozen truncated SVD of each base weight'),
    u: z
      .number()
      .int('u must be a whole number')
      .min(1, 'u must be at least 1')
      .default(64)
      .describe('length of each trainable vector v (number of random r × r projections per module)'),
    weightTying: z
      .number()
      .min(0, 'weightTying must be in [0, 1]')
      .max(1, 'weightTying must be in [0, 1]')
      .default(0)
      .describe('share v between consecutive modules: 0 = one v per module, 1 = one v for the whole model'),
    projectionSeed: z
      .number()
      .int('projectionSeed must be a whole number')
      .min(0, 'projectionSeed must be ≥ 0')
      .default(42)
      .describe(
        'the projections of module i are drawn from torch.Generator().manual_seed(projectionSeed + i)',
      ),
    saveProjection: z
      .boolean()
      .default(true)
      .describe('write tinylora_P into PEFT files (regenerating it elsewhere is not bit-exact)'),
    initWeights: z
      .union([z.literal(true), z.literal('uniform')])
      .default(true)
      .describe("true: v = 0 (the adapter starts as a no-op); 'uniform': v ~ U(−initVBound, initVBound)"),
    initVBound: z
      .number()
      .positive('initVBound must be positive')
      .default(0.02)
      .describe("bound of the 'uniform' v initialisation"),
    dropout: z
      .number()
      .min(0, 'dropout must be in [0, 1)')
      .lt(1, 'dropout must be in [0, 1)')
      .default(0)
      .describe('dropout on the input (Embedding: on the looked-up rows of B) (tinylora_dropout)'),
    ...targetFields,
  })
  .superRefine(refineTargetFields);

export type TinyloraConfig = z.output<typeof tinyloraConfigSchema>;

/** Python 3's `round(x)` for floats: to the nearest integer, ties to even. */
export function pythonRound(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * PEFT's weight-tying groups over `n` target modules: num_groups = max(1, round(n·(1 − weightTying))),
 * group_size = max(1, n // num_groups), group of module i = min(i // group_size, num_groups − 1), so
 * consecutive modules share a v and the last group takes the remainder.
 */
export function tyingGroups(n: number, weightTying: number): { numGroups: number; groupOf: number[] } {
  const numGroups = Math.max(1, pythonRound(n * (1.0 - weightTying)));
  const groupSize = Math.max(1, Math.floor(n / numGroups));
  const groupOf = Array.from({ length: n }, (_, i) => Math.min(Math.floor(i / groupSize), numGroups - 1));
  return { numGroups, groupOf };
}
