import { describe, expect, it } from 'vitest';
import {
  baselineRow,
  type MethodRow,
  markdownTable,
  methodTable,
  parseFlags,
  replaceBetweenMarkers,
} from './demo-lib.ts';

const START = '<!-- methods:start -->';
const END = '<!-- methods:end -->';
const HEADING = '## Method comparison on the demo task';

describe('replaceBetweenMarkers', () => {
  it('appends a section with the markers when they are absent', () => {
    const text = '# Title\n\nSome text.\n';
    expect(replaceBetweenMarkers(text, START, END, 'TABLE', HEADING)).toBe(
      `# Title\n\nSome text.\n\n${HEADING}\n\n${START}\nTABLE\n${END}\n`,
    );
  });

  it('replaces only what lies between the markers', () => {
    const text = `intro\n${START}\nold\nrows\n${END}\noutro\n`;
    expect(replaceBetweenMarkers(text, START, END, 'new', HEADING)).toBe(
      `intro\n${START}\nnew\n${END}\noutro\n`,
    );
  });

  it('is idempotent', () => {
    const once = replaceBetweenMarkers('# T\n', START, END, 'x', HEADING);
    expect(replaceBetweenMarkers(once, START, END, 'x', HEADING)).toBe(once);
  });

  it('refuses a lone or reversed marker', () => {
    expect(() => replaceBetweenMarkers(`a\n${START}\nb\n`, START, END, 'x', HEADING)).toThrow(/markers/);
    expect(() => replaceBetweenMarkers(`${END}\n${START}\n`, START, END, 'x', HEADING)).toThrow(
      /in that order/,
    );
  });
});

describe('markdownTable', () => {
  it('writes a header, a rule and escaped cells', () => {
    expect(markdownTable(['a', 'b'], [['1', 'x|y']])).toBe('| a | b |\n| --- | --- |\n| 1 | x\\|y |');
  });
});

describe('methodTable', () => {
  const base = baselineRow({ loss: 7.5, choiceAccuracy: 0.175, exactMatch: 0 });
  const tlora: MethodRow = {
    ...base,
    label: 'TLoRA',
    method: 'tlora',
    config: { r: 32, dropout: 0, targetModules: 'all-linear' },
    learningRate: 0.02,
    trainableParams: 28700,
    metrics: { loss: 1.25, choiceAccuracy: 0.5792, exactMatch: 0.5125 },
    trainWallSeconds: 120.4,
    trainCpuSeconds: 95.6,
    exportFormat: 'lora',
    adapterBytes: 2048,
  };

  it('shows the baseline with dashes and each method with its config, metrics, time and file', () => {
    const lines = methodTable([base, tlora]).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toBe('| untuned base model | — | 0 | 17.5 % | 0.0 % | 7.500 | — | — |');
    expect(lines[3]).toBe(
      '| TLoRA | r=32, dropout=0, lr=0.02 | 28,700 | 57.9 % | 51.2 % | 1.250 | 120 s / 96 s | 2.0 KiB (LoRA-converted) |',
    );
  });
});

describe('parseFlags', () => {
  const spec = { out: 'string', 'max-steps': 'number', json: 'boolean' } as const;

  it('reads values, inline values and booleans', () => {
    expect(parseFlags(['--out', '/x', '--max-steps=5', '--json'], spec)).toEqual({
      out: '/x',
      'max-steps': 5,
      json: true,
    });
  });

  it('names unknown flags, missing values and bad numbers', () => {
    expect(() => parseFlags(['--steps', '3'], spec)).toThrow(/unknown argument "--steps"/);
    expect(() => parseFlags(['--out'], spec)).toThrow(/--out needs a value/);
    expect(() => parseFlags(['--max-steps', 'many'], spec)).toThrow(/must be a number/);
    expect(() => parseFlags(['--json=1'], spec)).toThrow(/takes no value/);
  });
});
