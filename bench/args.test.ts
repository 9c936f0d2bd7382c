import { describe, expect, it } from 'vitest';
import { BenchArgsError, parseBenchArgs } from './args.ts';

describe('parseBenchArgs', () => {
  it('defaults to every section, no JSON, not quick', () => {
    expect(parseBenchArgs([])).toEqual({ json: false, quick: false, allowSoftwareGpu: false });
  });

  it('takes --sections and its older name --only', () => {
    expect(parseBenchArgs(['--sections', 'shapes,load']).sections).toEqual(['shapes', 'load']);
    expect(parseBenchArgs(['--only', 'matmul']).sections).toEqual(['matmul']);
  });

  it('reads the shapes section flags', () => {
    expect(
      parseBenchArgs([
        '--json',
        '--sections',
        'shapes',
        '--shapes',
        'qwen2.5-0.5b, llama-3.2-1b',
        '--dtypes',
        'bf16',
        '--batch',
        '1',
        '--seq',
        '32',
        '--steps',
        '2',
        '--allow-software-gpu',
        '--quick',
      ]),
    ).toEqual({
      json: true,
      quick: true,
      allowSoftwareGpu: true,
      sections: ['shapes'],
      shapes: ['qwen2.5-0.5b', 'llama-3.2-1b'],
      dtypes: ['bf16'],
      batch: 1,
      seq: 32,
      steps: 2,
    });
  });

  it.each([
    [['--shapes'], '--shapes needs a comma-separated list'],
    [['--shapes', '--json'], '--shapes needs a comma-separated list'],
    [['--sections', ','], '--sections needs a comma-separated list'],
    [['--dtypes', 'fp16'], '--dtypes: unknown fp16; expected bf16, fp32'],
    [['--batch', '0'], '--batch needs a whole number ≥ 1, got "0"'],
    [['--steps', '1.5'], '--steps needs a whole number ≥ 1, got "1.5"'],
    [['--seq'], '--seq needs a whole number ≥ 1, got nothing'],
    [['--seq', '1'], '--seq needs at least 2 tokens (one prediction target)'],
    [['--shape', 'x'], 'unknown argument "--shape"'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseBenchArgs(argv)).toThrow(new BenchArgsError(message));
  });
});
