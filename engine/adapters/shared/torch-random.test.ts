import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TorchGenerator } from './torch-random.ts';

const ref = JSON.parse(readFileSync(new URL('./fixtures/torch-random.json', import.meta.url), 'utf8')) as {
  raw: Record<string, number[]>;
  uniform: { seed: number; from: number; to: number; values: number[] };
  normal: { seed: number; n: number; mean: number; std: number; values: number[] }[];
};

describe('TorchGenerator', () => {
  it('matches MT19937 (numpy legacy seeding) raw outputs', () => {
    for (const [seed, values] of Object.entries(ref.raw)) {
      const g = new TorchGenerator(Number(seed));
      expect(values.map(() => g.nextUint32())).toEqual(values);
    }
  });

  it('reproduces torch.manual_seed(0); torch.rand(2) = [0.4963, 0.7682]', () => {
    const g = new TorchGenerator(0);
    const [a, b] = g.uniform(2, 0, 1);
    expect(a).toBeCloseTo(0.4963, 4);
    expect(b).toBeCloseTo(0.7682, 4);
  });

  it('uniform_ is bit-exact against the float32 reference', () => {
    const g = new TorchGenerator(ref.uniform.seed);
    expect(Array.from(g.uniform(ref.uniform.values.length, ref.uniform.from, ref.uniform.to))).toEqual(
      ref.uniform.values,
    );
  });

  it('normal follows normal_fill, including the redrawn ragged tail', () => {
    for (const c of ref.normal) {
      const got = new TorchGenerator(c.seed).normal(c.n, c.mean, c.std);
      for (let i = 0; i < c.n; i++)
        expect(Math.abs(got[i] - c.values[i])).toBeLessThan(1e-6 * (1 + Math.abs(c.values[i])));
    }
  });

  it('refuses fewer than 16 normals', () => {
    expect(() => new TorchGenerator(0).normal(8, 0, 1)).toThrow(/fewer than 16/);
  });
});
