import { describe, expect, test } from 'vitest';
import { readModelConfig, specFromConfig } from '../models/index.ts';
import type { ModelSpec } from '../models/types.ts';
import { computeBudget, safetensorsSize } from './budget.ts';

const fixture = (name: string) => `engine/adapters/fixtures/configs/${name}/config.json`;

async function spec(name: string, opts: Parameters<typeof specFromConfig>[1] = {}): Promise<ModelSpec> {
  return specFromConfig(await readModelConfig(fixture(name)), opts);
}

// Reference figures: PEFT's method_comparison/MetaMathQA results (Llama-3.2-3B, q_proj/v_proj) and the
// well-known GPT-2 `print_trainable_parameters` line; see shared/reference/peft-methods.md §0.6 and §6.
describe('computeBudget', () => {
  test('LoRA r=32, α=64 on q_proj,v_proj of Llama-3.2-3B: 9,175,040 trainable, PEFT file 36,715,216 bytes', async () => {
    const b = computeBudget(await spec('llama-3.2-3b'), 'lora', {
      r: 32,
      loraAlpha: 64,
      targetModules: ['q_proj', 'v_proj'],
    });
    expect(b.trainable).toBe(9_175_040);
    expect(b.frozen).toBe(0);
    expect(b.model.numParameters).toBe(3_212_749_824);
    expect(b.allParameters).toBe(3_221_924_864);
    expect(b.targets).toHaveLength(56);
    expect(b.targets[0]).toMatchObject({
      name: 'model.layers.0.self_attn.q_proj',
      trainable: 32 * (3072 + 3072),
    });
    expect(b.targets[1]).toMatchObject({
      name: 'model.layers.0.self_attn.v_proj',
      trainable: 32 * (3072 + 1024),
    });
    expect(b.files.peft).toBe(36_715_216);
    expect(b.files.lora).toBe(36_715_216);
    expect(b.peftLine).toBe('trainable params: 9,175,040 || all params: 3,221,924,864 || trainable%: 0.2848');
  });

  test('DoRA adds one magnitude per output: 9,289,728 trainable, PEFT file 37,181,760 bytes, no LoRA conversion', async () => {
    const b = computeBudget(await spec('llama-3.2-3b'), 'lora', {
      r: 32,
      loraAlpha: 64,
      useDora: true,
      targetModules: ['q_proj', 'v_proj'],
    });
    expect(b.trainable).toBe(9_289_728);
    expect(b.files.peft).toBe(37_181_760);
    expect(b.files.lora).toBeNull();
  });

  test('r=64 rsLoRA: 18,350,080 trainable, 73,415,408 bytes; default targets equal q_proj,v_proj', async () => {
    const b = computeBudget(await spec('llama-3.2-3b'), 'lora', { r: 64, loraAlpha: 64, useRslora: true });
    expect(b.trainable).toBe(18_350_080);
    expect(b.files.peft).toBe(73_415_408);
  });

  test('GPT-2 default LoRA (r=8 on c_attn): 294,912 of 124,734,720', async () => {
    const b = computeBudget(await spec('gpt2'), 'lora', {});
    expect(b.targets.map((t) => t.kind)).toEqual(Array(12).fill('Conv1D'));
    expect(b.trainable).toBe(294_912);
    expect(b.peftLine).toBe('trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364');
  });

  test('PiSSA exports as rank 2r relative to the original weights', async () => {
    const s = await spec('gpt2');
    const plain = computeBudget(s, 'lora', { r: 4 });
    const pissa = computeBudget(s, 'lora', { r: 4, initLoraWeights: 'pissa' });
    expect(pissa.trainable).toBe(plain.trainable);
    expect(pissa.files.lora).toBe(computeBudget(s, 'lora', { r: 8 }).files.peft);
  });

  test('memory: weights in their held dtype, gradients and AdamW state scale with the counts; activations with batch, length and checkpointing', async () => {
    const s = await spec('llama-3.2-3b');
    const b = computeBudget(s, 'lora', { r: 32, loraAlpha: 64 }, { batchSize: 4, seqLen: 768 });
    expect(b.memory.weightsDtype).toBe('bf16');
    expect(b.memory.weights).toBe(3_212_749_824 * 2);
    const widened = computeBudget(
      s,
      'lora',
      { r: 32 },
      { batchSize: 4, seqLen: 768, weightsHeldAs: 'float32' },
    );
    expect(widened.memory.weights).toBe(3_212_749_824 * 4);
    expect(b.memory.gradients).toBe(9_175_040 * 4);
    expect(b.memory.optimizer).toBe(2 * 9_175_040 * 4);
    const half = computeBudget(s, 'lora', { r: 32, loraAlpha: 64 }, { batchSize: 2, seqLen: 768 });
    expect(half.memory.activations).toBeLessThan(b.memory.activations);
    expect(b.memory.total).toBe(
      b.memory.runtime +
        b.memory.weights +
        b.memory.adapter +
        b.memory.gradients +
        b.memory.optimizer +
        b.memory.activations,
    );
    expect(b.memory.checkpointing).toBe(false);
    // checkpointing keeps each block's input and one block's working set instead of every block's values
    const fixed = b.memory.total - b.memory.activations;
    expect(b.memory.totalWithCheckpointing - fixed).toBeLessThan(
      (b.memory.totalWithoutCheckpointing - fixed) / 4,
    );
    const checkpointed = computeBudget(
      s,
      'lora',
      { r: 32 },
      { batchSize: 4, seqLen: 768, checkpointing: true },
    );
    expect(checkpointed.memory.total).toBe(checkpointed.memory.totalWithCheckpointing);
    const accumulating = computeBudget(
      s,
      'lora',
      { r: 32, loraAlpha: 64 },
      { batchSize: 4, seqLen: 768, gradAccumSteps: 4 },
    );
    expect(accumulating.memory.gradients).toBe(2 * b.memory.gradients);
    expect(() => computeBudget(s, 'lora', {}, { batchSize: 0 })).toThrow(
      /batchSize must be a positive integer/,
    );
  });

  test('bad config and unknown targets give clear errors', async () => {
    const s = await spec('llama-3.2-3b');
    expect(() => computeBudget(s, 'lora', { r: 0 })).toThrow(/invalid lora config: r: r must be at least 1/);
    expect(() => computeBudget(s, 'lora', { targetModules: ['q_prj'] })).toThrow(
      /target module "q_prj" matches no module.*nearest names: q_proj/,
    );
    expect(() => computeBudget(s, 'nope', {})).toThrow(/unknown adapter method "nope"/);
  });
});

describe('safetensorsSize', () => {
  test('matches the byte layout of a hand-written file', () => {
    const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = header.length + ((8 - (header.length % 8)) % 8);
    expect(safetensorsSize([{ key: 'a', shape: [2] }], { format: 'pt' })).toBe(8 + padded + 8);
  });
});
