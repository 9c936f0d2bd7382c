import { describe, expect, test } from 'vitest';
import { readModelConfig, specFromConfig } from '../../models/index.ts';
import type { ModelSpec } from '../../models/types.ts';
import { computeBudget } from '../budget.ts';

/**
 * The budget of the methods of this folder group on real model configs, against PEFT's MetaMathQA results
 * (Llama-3.2-3B, q_proj/v_proj: trainable counts and adapter_model.safetensors sizes) and the TLoRA paper.
 * A file size matching to the byte confirms the PEFT key names and shapes.
 */
async function spec(name: string): Promise<ModelSpec> {
  return specFromConfig(await readModelConfig(`engine/adapters/fixtures/configs/${name}/config.json`));
}

describe('budgets of TLoRA, TinyLoRA, VeRA and LoRA-XS', () => {
  test('VeRA r=256: 129,024 trainable, PEFT file 6,821,968 bytes', async () => {
    const b = computeBudget(await spec('llama-3.2-3b'), 'vera', { targetModules: ['q_proj', 'v_proj'] });
    expect(b.trainable).toBe(129_024);
    expect(b.files.peft).toBe(6_821_968);
  });

  test('TinyLoRA r=2, u=64: 3,584 trainable, PEFT file 2,391,912 bytes; weightTying 1: 64 and 2,372,944', async () => {
    const s = await spec('llama-3.2-3b');
    const b = computeBudget(s, 'tinylora', { targetModules: ['q_proj', 'v_proj'] });
    expect(b.trainable).toBe(3_584);
    expect(b.files.peft).toBe(2_391_912);
    const tied = computeBudget(s, 'tinylora', { targetModules: ['q_proj', 'v_proj'], weightTying: 1 });
    expect(tied.trainable).toBe(64);
    expect(tied.files.peft).toBe(2_372_944);
  });

  test('TLoRA r=32 on RoBERTa-large query,value: 49,200 trainable', async () => {
    const b = computeBudget(await spec('roberta-large'), 'tlora', { r: 32 });
    expect(b.targets).toHaveLength(48);
    expect(b.trainable).toBe(49_200);
    expect(b.files.peft).toBeNull();
    expect(b.files.lora).not.toBeNull();
  });

  test('LoRA-XS r=32 on RoBERTa-large query,value: 32² per module', async () => {
    const b = computeBudget(await spec('roberta-large'), 'loraxs', {});
    expect(b.trainable).toBe(48 * 32 * 32);
    expect(b.files.peft).toBeNull();
  });
});
