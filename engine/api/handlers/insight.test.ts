import { describe, expect, it } from 'vitest';
import { RunComparisonSchema } from '../../common/contract.ts';
import { configDiff } from './insight.ts';

describe('configDiff', () => {
  it('passes the contract when a setting exists in one run only (a LoRA run against a TLoRA run)', () => {
    const diff = configDiff(
      { method: { name: 'lora', config: { r: 8, loraAlpha: 16 } }, training: { maxSteps: 24 } },
      { method: { name: 'tlora', config: { r: 4 } }, training: { maxSteps: 24, seed: 1 } },
    );
    expect(RunComparisonSchema.shape.configDiff.parse(JSON.parse(JSON.stringify(diff)))).toEqual([
      { key: 'method.config.loraAlpha', a: 16 },
      { key: 'method.config.r', a: 8, b: 4 },
      { key: 'method.name', a: 'lora', b: 'tlora' },
      { key: 'training.seed', b: 1 },
    ]);
  });
});
