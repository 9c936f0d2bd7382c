import { z } from 'zod';
import { refineTargetFields, targetFields } from '../targets.ts';

/** MoSLoRA (wutaiqiang/MoSLoRA, `lora_use_mixer`; not in PEFT): LoRA's fields with LoRA's defaults. */
export const mosloraConfigSchema = z
  .strictObject({
    r: z
      .number()
      .int('r must be a whole number')
      .min(1, 'r must be at least 1')
      .default(8)
      .describe('rank; the trainable mixer between A and B is r × r'),
    loraAlpha: z
      .number()
      .positive('loraAlpha must be positive')
      .default(8)
      .describe('scaling numerator: ΔW = (loraAlpha / r)·B·M·A'),
    dropout: z
      .number()
      .min(0, 'dropout must be in [0, 1)')
      .lt(1, 'dropout must be in [0, 1)')
      .default(0)
      .describe('dropout probability on the adapter input'),
    ...targetFields,
  })
  .superRefine(refineTargetFields);

export type MosloraConfig = z.output<typeof mosloraConfigSchema>;
