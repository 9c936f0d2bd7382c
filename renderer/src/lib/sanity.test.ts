import { describe, expect, it } from 'vitest';
import type { Budget, ModelSummary } from '../../../engine/common/contract.ts';
import { type SanityInput, sanityWarnings, sweptLearningRates } from './sanity.ts';

const linear = (name: string, inFeatures: number, outFeatures: number) => ({
  name,
  type: 'Linear',
  shape: [outFeatures, inFeatures],
  params: inFeatures * outFeatures,
  adaptable: 'Linear' as const,
  inFeatures,
  outFeatures,
});
const model = {
  modules: [
    linear('model.layers.0.self_attn.q_proj', 128, 128),
    linear('model.layers.0.self_attn.k_proj', 128, 64),
    linear('model.layers.1.self_attn.q_proj', 128, 128),
    linear('model.layers.1.self_attn.k_proj', 128, 64),
  ],
} as unknown as ModelSummary;
const budget = (memoryBytes = 1e8) =>
  ({ targets: model.modules.map((m) => m.name), memoryBytes }) as unknown as Budget;
const input = (patch: Partial<SanityInput> = {}): SanityInput => ({
  method: 'lora',
  config: { r: 8 },
  model,
  budget: budget(),
  training: { learningRate: 5e-3, batchSize: 8, maxSeqLen: 64, epochs: 3, warmupSteps: 0 },
  trainExamples: 1800,
  machineMemoryBytes: 16e9,
  ...patch,
});
const keys = (i: SanityInput) => sanityWarnings(i).map((w) => `${w.form}:${w.key}`);

describe('sanity warnings', () => {
  it('say nothing about sensible settings', () => {
    expect(sanityWarnings(input())).toEqual([]);
  });

  it('name the largest useful rank per module when r exceeds min(in, out)', () => {
    const [w, ...rest] = sanityWarnings(input({ config: { r: 100_000 } }));
    expect(rest).toEqual([]);
    expect(w.key).toBe('r');
    expect(w.message).toContain('4 of the 4 targeted modules');
    expect(w.message).toContain('self_attn.q_proj 128, self_attn.k_proj 64');
    // above the narrower modules only
    expect(sanityWarnings(input({ config: { r: 100 } }))[0].message).toContain('2 of the 4');
    expect(keys(input({ config: { r: 64 } }))).toEqual([]);
  });

  it("flag learning rates ten times outside the README's sweep of the method", () => {
    const { low, high } = sweptLearningRates.vera ?? { low: 0, high: 0 };
    expect(
      keys(input({ method: 'vera', training: { ...input().training, learningRate: high * 10 } })),
    ).toEqual([]);
    const above = sanityWarnings(input({ training: { ...input().training, learningRate: 1e9 } }));
    expect(above.map((w) => w.key)).toEqual(['learningRate']);
    expect(above[0].message).toMatch(/diverge/);
    const below = sanityWarnings(
      input({ method: 'vera', training: { ...input().training, learningRate: low / 11 } }),
    );
    expect(below[0].message).toMatch(/barely move/);
  });

  it('compare the memory estimate with the machine, beside batch size and sequence length', () => {
    const heavy = input({ budget: budget(15e9) });
    expect(keys(heavy)).toEqual(['training:batchSize', 'training:maxSeqLen']);
    expect(sanityWarnings(heavy)[0].message).toMatch(/Batch 8 × 64 tokens needs about .* of this machine's/);
  });

  it('weigh epochs and steps against the dataset size', () => {
    const t = input().training;
    expect(keys(input({ training: { ...t, epochs: 50 } }))).toEqual(['training:epochs']);
    expect(keys(input({ training: { ...t, maxSteps: 5000 } }))).toEqual(['training:maxSteps']);
    expect(keys(input({ trainExamples: 4, training: { ...t, epochs: 1 } }))).toEqual(['training:batchSize']);
    expect(keys(input({ training: { ...t, maxSteps: 10, warmupSteps: 10 } }))).toEqual([
      'training:warmupSteps',
    ]);
  });
});
