import { describe, expect, test } from 'vitest';
import { configFromFlags, schemaFlags } from './flags.ts';
import { loraConfigSchema } from './lora/config.ts';

describe('flags from a method schema', () => {
  test('one kebab-case flag per field; false-default booleans are switches', () => {
    const flags = Object.fromEntries(schemaFlags(loraConfigSchema).map((f) => [f.field, f]));
    expect(flags.loraAlpha).toMatchObject({ flag: 'lora-alpha', type: 'string', defaultText: '8' });
    expect(flags.useDora).toMatchObject({ flag: 'use-dora', type: 'boolean' });
    expect(flags.initLoraWeights).toMatchObject({
      type: 'string',
      value: '<true|false|gaussian|pissa|olora>',
    });
    expect(Object.keys(flags)).toHaveLength(Object.keys(loraConfigSchema.shape).length);
  });

  test('values parse onto the schema types; the schema then validates', () => {
    const input = configFromFlags(loraConfigSchema, {
      r: '32',
      'lora-alpha': '64',
      'use-dora': true,
      'init-lora-weights': 'false',
      'rank-pattern': 'q_proj=4,layers\\.0\\..*=2',
      'target-modules': 'q_proj,self_attn.v_proj',
      'layers-to-transform': '0,3',
      'exclude-modules': '.*\\.1\\d\\..*',
    });
    expect(input).toEqual({
      r: 32,
      loraAlpha: 64,
      useDora: true,
      initLoraWeights: false,
      rankPattern: { q_proj: 4, 'layers\\.0\\..*': 2 },
      targetModules: ['q_proj', 'self_attn.v_proj'],
      layersToTransform: [0, 3],
      excludeModules: '.*\\.1\\d\\..*',
    });
    expect(loraConfigSchema.parse(input).r).toBe(32);
    expect(
      configFromFlags(loraConfigSchema, { 'target-modules': 'all-linear', 'layers-to-transform': '2' }),
    ).toEqual({
      targetModules: 'all-linear',
      layersToTransform: 2,
    });
    expect(configFromFlags(loraConfigSchema, { 'alpha-pattern': '{"v_proj": 16}' })).toEqual({
      alphaPattern: { v_proj: 16 },
    });
  });

  test('unreadable values name the flag', () => {
    expect(() => configFromFlags(loraConfigSchema, { r: 'eight' })).toThrow(
      '--r must be a number, got "eight"',
    );
    expect(() => configFromFlags(loraConfigSchema, { 'rank-pattern': 'q_proj' })).toThrow(
      /--rank-pattern takes key=value/,
    );
  });
});
