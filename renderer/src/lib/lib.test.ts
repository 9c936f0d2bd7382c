import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatDuration, metricLabel } from './format.ts';
import { fieldsFromSchema, parseFieldValue } from './schemaForm.ts';
import { emaSmooth } from './smoothing.ts';
import { buildModuleTree, checkState, minimalTargets, toggleNode } from './tree.ts';

describe('emaSmooth', () => {
  it('matches the debiased EMA written out by hand', () => {
    const w = 0.5;
    // s1 = (1-w)x1 / (1-w) = x1; s2 = (w(1-w)x1 + (1-w)x2) / (1-w²)
    const [a, b, c] = emaSmooth([2, 4, null], w) as number[];
    expect(a).toBeCloseTo(2, 12);
    expect(b).toBeCloseTo((0.25 * 2 + 0.5 * 4) / 0.75, 12);
    expect(c).toBeNull();
    expect(emaSmooth([1, 5], 0)).toEqual([1, 5]);
  });
});

describe('format', () => {
  it('names metric keys as headings, leaving unknown keys alone', () => {
    expect(metricLabel('choiceAccuracy')).toBe('choice accuracy');
    expect(metricLabel('exactMatch')).toBe('exact match');
    expect(metricLabel('bleu')).toBe('bleu');
  });

  it('formats sizes, counts and durations', () => {
    expect(formatBytes(1536)).toBe('1.50 KB');
    expect(formatCount(1_049_728)).toBe('1.05M');
    expect(formatCount(136)).toBe('136');
    expect(formatDuration(3725)).toBe('1h 02m');
  });
});

const modules = [
  {
    name: 'model.layers.0.self_attn.q_proj',
    type: 'Linear',
    shape: [4, 4],
    params: 16,
    adaptable: 'Linear' as const,
  },
  {
    name: 'model.layers.0.self_attn.v_proj',
    type: 'Linear',
    shape: [4, 4],
    params: 16,
    adaptable: 'Linear' as const,
  },
  {
    name: 'model.layers.1.self_attn.q_proj',
    type: 'Linear',
    shape: [4, 4],
    params: 16,
    adaptable: 'Linear' as const,
  },
  {
    name: 'model.layers.1.self_attn.v_proj',
    type: 'Linear',
    shape: [4, 4],
    params: 16,
    adaptable: 'Linear' as const,
  },
  { name: 'model.norm', type: 'LlamaRMSNorm', shape: [4], params: 4 },
];

describe('module tree', () => {
  it('nests names and sums parameters', () => {
    const root = buildModuleTree(modules);
    expect(root.params).toBe(68);
    const layers = root.children[0].children.find((c) => c.label === 'layers')!;
    expect(layers.children.map((c) => c.label)).toEqual(['0', '1']);
    expect(layers.adaptable).toHaveLength(4);
  });

  it('tri-state checks and toggles a subtree', () => {
    const root = buildModuleTree(modules);
    const layer0 = root.children[0].children[0].children[0];
    const selected = new Set(['model.layers.0.self_attn.q_proj']);
    expect(checkState(layer0, selected)).toBe('some');
    const next = toggleNode(layer0, selected);
    expect(checkState(layer0, next)).toBe('all');
    expect(checkState(layer0, toggleNode(layer0, next))).toBe('none');
  });

  it('writes the shortest PEFT target list', () => {
    const names = modules.filter((m) => m.adaptable).map((m) => m.name);
    expect(minimalTargets(new Set(names.filter((n) => n.endsWith('q_proj'))), names)).toEqual(['q_proj']);
    expect(minimalTargets(new Set(['model.layers.1.self_attn.v_proj']), names)).toEqual([
      'model.layers.1.self_attn.v_proj',
    ]);
  });
});

describe('schema form', () => {
  const schema = {
    type: 'object',
    properties: {
      r: { type: 'integer', minimum: 1, default: 8, description: 'rank' },
      loraAlpha: { type: 'number', exclusiveMinimum: 0, default: 8 },
      useDora: { type: 'boolean', default: false },
      initLoraWeights: {
        anyOf: [{ type: 'boolean' }, { type: 'string', enum: ['gaussian', 'pissa'] }],
        default: true,
      },
      targetModules: { anyOf: [{ type: 'array' }, { type: 'string' }] },
    },
    required: ['r'],
  };

  it('derives one field per property, skipping the target fields', () => {
    const fields = fieldsFromSchema(schema, (k) => k === 'targetModules');
    expect(fields.map((f) => [f.key, f.kind])).toEqual([
      ['r', 'integer'],
      ['loraAlpha', 'number'],
      ['useDora', 'boolean'],
      ['initLoraWeights', 'enum'],
    ]);
    expect(fields[0].description).toBe('rank');
    expect(fields[3].options).toEqual([true, false, 'gaussian', 'pissa']);
  });

  it('validates typed input with messages that name the field', () => {
    const [r] = fieldsFromSchema(schema);
    expect(parseFieldValue(r, '4')).toEqual({ value: 4 });
    expect(parseFieldValue(r, '0').error).toBe('r must be ≥ 1');
    expect(parseFieldValue(r, '2.5').error).toBe('r must be a whole number');
    expect(parseFieldValue(r, 'x').error).toBe('r: “x” is not a number (type digits, like 8)');
  });

  it('reads numbers as people type them and never guesses one', () => {
    const lr = {
      key: 'learningRate',
      label: 'Learning rate',
      kind: 'number',
      optional: false,
      nullable: false,
    } as const;
    const cases: [string, number][] = [
      ['0.0002', 0.0002],
      ['2e-4', 0.0002],
      ['2E-4', 0.0002],
      ['1e9', 1e9],
      ['-1', -1],
      ['+3', 3],
      ['.5', 0.5],
      ['5.', 5],
    ];
    for (const [text, value] of cases) expect(parseFieldValue(lr, text), text).toEqual({ value });
    for (const text of ['abc', '2e', '-', '.', '1,5', '0x10', '1e999', 'Infinity', 'NaN', '2 e-4', '--1'])
      expect(parseFieldValue(lr, text).error, text).toMatch(/^Learning rate: /);
  });

  it('keeps exclusive bounds of the schema (positive(), lt())', () => {
    const [, alpha] = fieldsFromSchema(schema);
    expect(alpha).toMatchObject({ minimum: 0, exclusiveMinimum: true });
    expect(parseFieldValue(alpha, '0').error).toBe('lora alpha must be > 0');
    expect(parseFieldValue(alpha, '1e-9')).toEqual({ value: 1e-9 });
    const [fraction] = fieldsFromSchema({
      type: 'object',
      properties: { valFraction: { type: 'number', minimum: 0, exclusiveMaximum: 1 } },
    });
    expect(parseFieldValue(fraction, '1').error).toBe('val fraction must be < 1');
    expect(parseFieldValue(fraction, '0')).toEqual({ value: 0 });
  });
});
