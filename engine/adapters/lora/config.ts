import { z } from 'zod';
import { refineTargetFields, targetFields } from '../targets.ts';

/** PEFT's `LoraConfig` (the fields this engine implements), camelCase; defaults as PEFT's. */
export const loraConfigSchema = z
  .strictObject({
    r: z
      .number()
      .int('r must be a whole number')
      .min(1, 'r must be at least 1')
      .default(8)
      .describe('LoRA rank'),
    loraAlpha: z
      .number()
      .positive('loraAlpha must be positive')
      .default(8)
      .describe('scaling numerator: scaling = loraAlpha / r (or / √r with useRslora)'),
    dropout: z
      .number()
      .min(0, 'dropout must be in [0, 1)')
      .lt(1, 'dropout must be in [0, 1)')
      .default(0)
      .describe('dropout probability on the adapter input (lora_dropout)'),
    useRslora: z.boolean().default(false).describe('rank-stabilised scaling loraAlpha / √r'),
    useDora: z
      .boolean()
      .default(false)
      .describe('DoRA: trainable per-output magnitude over the adapted weight'),
    initLoraWeights: z
      .union([z.boolean(), z.enum(['gaussian', 'pissa', 'olora'])])
      .default(true)
      .describe(
        'true: kaiming-uniform A, zero B; gaussian: A ~ N(0, 1/r); pissa / olora: principal factors, residual in the base weight; false: random (not a no-op)',
      ),
    rankPattern: z
      .record(z.string(), z.number().int().min(1, 'rankPattern ranks must be at least 1'))
      .default({})
      .describe('per-module rank: regex key → r (matched as (.*\\.)?(key)$, first key wins)'),
    alphaPattern: z
      .record(z.string(), z.number().positive('alphaPattern values must be positive'))
      .default({})
      .describe('per-module alpha: regex key → loraAlpha (matched as (.*\\.)?(key)$, first key wins)'),
    loraBias: z.boolean().default(false).describe('a trainable bias on lora_B (scaled with the adapter)'),
    ...targetFields,
  })
  .superRefine((value, ctx) => {
    refineTargetFields(value, ctx);
    if (value.loraBias && value.useDora) {
      ctx.addIssue({
        code: 'custom',
        path: ['loraBias'],
        message: 'loraBias cannot be combined with useDora',
      });
    }
    if (value.loraBias && typeof value.initLoraWeights !== 'boolean') {
      ctx.addIssue({
        code: 'custom',
        path: ['loraBias'],
        message: `loraBias requires initLoraWeights true or false, not "${value.initLoraWeights}"`,
      });
    }
    for (const field of ['rankPattern', 'alphaPattern'] as const) {
      for (const key of Object.keys(value[field])) {
        try {
          new RegExp(key);
        } catch (error) {
          ctx.addIssue({
            code: 'custom',
            path: [field, key],
            message: `invalid regex: ${(error as Error).message}`,
          });
        }
      }
    }
  });

export type LoraConfig = z.output<typeof loraConfigSchema>;

/** PEFT's pattern rule: the first key with `re.match(rf"(.*\.)?({key})$", name)`, else null. */
export function patternKey(patterns: Record<string, unknown>, moduleName: string): string | null {
  for (const key of Object.keys(patterns)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(moduleName)) return key;
  }
  return null;
}

/** Rank and alpha at one module, after `rankPattern` / `alphaPattern`. */
export function moduleRankAlpha(config: LoraConfig, moduleName: string): { r: number; alpha: number } {
  const rKey = patternKey(config.rankPattern, moduleName);
  const aKey = patternKey(config.alphaPattern, moduleName);
  return {
    r: rKey === null ? config.r : config.rankPattern[rKey],
    alpha: aKey === null ? config.loraAlpha : config.alphaPattern[aKey],
  };
}

/** `alpha / r`, or `alpha / √r` with rsLoRA. */
export function loraScaling(alpha: number, r: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}
