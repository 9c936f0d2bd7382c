import { describe, expect, it } from 'vitest';
import { archConfig } from './registry.ts';
import { type Rope, ropeFrequencies, ropeOf } from './rope.ts';

const llama = {
  model_type: 'llama',
  vocab_size: 32,
  hidden_size: 64,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  max_position_embeddings: 4096,
};

const opts = { defaultTheta: 10000, headDim: 16, maxPositions: 4096, layerTypes: ['full_attention'] };

/** Llama's RoPE of one config (rope_parameters in 5.x or rope_theta / rope_scaling in 4.x). */
function ropeOfLlama(fields: Record<string, unknown>): Rope {
  const arch = archConfig({ ...llama, ...fields }) as unknown as { rope: Record<string, Rope> };
  return arch.rope.full_attention;
}

describe('RoPE settings from config.json', () => {
  it('reads both generations of config.json to the same settings', () => {
    const v5 = ropeOfLlama({
      rope_parameters: {
        rope_type: 'llama3',
        rope_theta: 500000,
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const v4 = ropeOfLlama({
      rope_theta: 500000,
      rope_scaling: {
        type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    expect(v4).toEqual(v5);
    expect(v5).toMatchObject({ type: 'llama3', theta: 500000, factor: 8 });
    expect(ropeOfLlama({ rope_theta: 1e6 })).toEqual({ type: 'default', theta: 1e6, dim: 16, headDim: 16 });
    expect(ropeOfLlama({})).toMatchObject({ type: 'default', theta: 10000 });
  });

  it("computes yarn's and longrope's attention factor as transformers does at init", () => {
    const yarn = ropeOfLlama({ rope_parameters: { rope_type: 'yarn', factor: 4, rope_theta: 1e4 } });
    expect(yarn).toMatchObject({ attentionFactor: 0.1 * Math.log(4) + 1, originalMaxPositions: 4096 });
    const scaled = ropeOfLlama({
      rope_parameters: { rope_type: 'yarn', factor: 4, mscale: 2, mscale_all_dim: 1, rope_theta: 1e4 },
    });
    expect(scaled).toMatchObject({ attentionFactor: (0.2 * Math.log(4) + 1) / (0.1 * Math.log(4) + 1) });
    const long = ropeOfLlama({
      rope_parameters: {
        rope_type: 'longrope',
        short_factor: new Array(8).fill(1),
        long_factor: new Array(8).fill(2),
        original_max_position_embeddings: 1024,
        rope_theta: 1e4,
      },
    });
    expect(long).toMatchObject({ attentionFactor: Math.sqrt(1 + Math.log(4) / Math.log(1024)) });
    expect(ropeFrequencies(long, 1024).invFreq[1]).toBeCloseTo(1 / 10000 ** (2 / 16), 6);
    expect(ropeFrequencies(long, 1025).invFreq[1]).toBeCloseTo(1 / (2 * 10000 ** (2 / 16)), 6);
  });

  it('dynamic NTK keeps the base within max_position_embeddings and grows it beyond', () => {
    const rope = ropeOfLlama({ rope_parameters: { rope_type: 'dynamic', factor: 2, rope_theta: 1e4 } });
    const base = ropeFrequencies({ ...rope, type: 'default' } as Rope, 0).invFreq;
    expect(ropeFrequencies(rope, 4096).invFreq).toEqual(base);
    const longer = ropeFrequencies(rope, 8192).invFreq;
    const theta = 1e4 * (2 * 2 - 1) ** (16 / 14);
    expect(longer[3]).toBeCloseTo(1 / theta ** (6 / 16), 6);
  });

  it('reads RoPE per layer type', () => {
    const ropes = ropeOf(
      {
        rope_parameters: {
          sliding_attention: { rope_type: 'default', rope_theta: 1e4 },
          full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
        },
      },
      { ...opts, layerTypes: ['sliding_attention', 'full_attention'] },
    );
    expect(ropes.sliding_attention).toMatchObject({ type: 'default', theta: 1e4 });
    expect(ropes.full_attention).toMatchObject({ type: 'linear', theta: 1e6, factor: 8 });
  });

  it('refuses unknown rope types and field combinations, naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { rope_parameters: { rope_type: 'mrope', mrope_section: [1] } },
        /rope type "mrope" \("rope_parameters.rope_type"\)/,
      ],
      [
        { rope_parameters: { rope_type: 'default', factor: 2 } },
        /"rope_parameters.factor" is not a field of rope type "default"/,
      ],
      [
        { rope_scaling: { type: 'linear' } },
        /missing "rope_scaling.factor" \(needed for rope type "linear"\)/,
      ],
      [
        { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1 } },
        /missing "rope_scaling.high_freq_factor"/,
      ],
      [
        { rope_scaling: { type: 'linear', factor: 2 }, rope_parameters: { rope_type: 'default' } },
        /"rope_scaling" and "rope_parameters" are both set and differ/,
      ],
      [
        { rope_theta: 1e4, rope_parameters: { rope_theta: 5e5 } },
        /"rope_parameters.rope_theta" \(500000\) disagrees with the top-level "rope_theta" \(10000\)/,
      ],
      [
        { rope_scaling: { rope_type: 'linear', type: 'dynamic', factor: 2 } },
        /"rope_scaling.rope_type".*disagree/,
      ],
      [{ rope_scaling: { type: 'linear', factor: -1 } }, /"rope_scaling.factor" must be a positive number/],
      [
        { rope_parameters: { rope_type: 'default', partial_rotary_factor: 0.5 } },
        /"rope_parameters.partial_rotary_factor" 0.5 is not supported/,
      ],
      [
        {
          rope_parameters: {
            rope_type: 'longrope',
            short_factor: [1, 1],
            long_factor: new Array(8).fill(1),
            original_max_position_embeddings: 1024,
          },
        },
        /"rope_parameters.short_factor" must have 8 entries/,
      ],
      [{ rope_scaling: 'linear' }, /"rope_scaling" must be an object or null/],
    ];
    for (const [fields, message] of cases) {
      expect(() => ropeOfLlama(fields), JSON.stringify(fields)).toThrow(message);
      expect(() => ropeOfLlama(fields)).toThrow(/^config.json: /);
    }
    expect(() =>
      ropeOf(
        { rope_parameters: { full_attention: { rope_type: 'default' }, global: { rope_type: 'default' } } },
        { ...opts, layerTypes: ['full_attention'] },
      ),
    ).toThrow(/"rope_parameters.global" is not a layer type of this model/);
  });
});
