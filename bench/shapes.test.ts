import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchOptions } from './args.ts';
import {
  compare,
  memoryLine,
  memorySkip,
  planShape,
  SHAPES,
  type ShapeState,
  type StepFigures,
  shapeRuns,
  shapesDir,
  unknownShapes,
} from './shapes.ts';
import { targetNote } from './targets.ts';

const options = (o: Partial<BenchOptions> = {}): BenchOptions => ({
  json: false,
  quick: false,
  allowSoftwareGpu: false,
  ...o,
});

describe('the shapes table', () => {
  it('names exactly the shapes scripts/shapes/make_shapes.py makes', () => {
    const script = readFileSync(
      join(import.meta.dirname, '..', 'scripts', 'shapes', 'make_shapes.py'),
      'utf8',
    );
    const table = script.slice(script.indexOf('SHAPES = {'), script.indexOf('\n}\n'));
    const names = [...table.matchAll(/^ {4}'([^']+)': \{/gm)].map((m) => m[1]);
    expect(SHAPES.map((s) => s.name)).toEqual(names);
  });

  it('holds the issue #10 settings: batch 4 × 256, the 3B at batch 1 with checkpointing', () => {
    expect(SHAPES.map((s) => [s.name, s.batch, s.seq, s.checkpointing])).toEqual([
      ['qwen2.5-0.5b', 4, 256, false],
      ['llama-3.2-1b', 4, 256, false],
      ['llama-3.2-3b', 1, 256, true],
    ]);
  });
});

describe('shapeRuns', () => {
  it('runs every shape at its own settings, three timed steps', () => {
    expect(shapeRuns(options()).map((r) => [r.name, r.batch, r.seq, r.steps])).toEqual([
      ['qwen2.5-0.5b', 4, 256, 3],
      ['llama-3.2-1b', 4, 256, 3],
      ['llama-3.2-3b', 1, 256, 3],
    ]);
  });

  it('picks shapes with --shapes and overrides batch, seq and steps', () => {
    const runs = shapeRuns(options({ shapes: ['llama-3.2-3b'], batch: 2, seq: 32, steps: 1 }));
    expect(runs).toEqual([{ ...SHAPES[2], batch: 2, seq: 32, steps: 1 }]);
  });

  it('--quick: the smallest shape, small, unless flags say otherwise', () => {
    expect(shapeRuns(options({ quick: true }))).toEqual([{ ...SHAPES[0], batch: 1, seq: 64, steps: 1 }]);
    expect(shapeRuns(options({ quick: true, shapes: ['llama-3.2-1b'], seq: 128 }))).toEqual([
      { ...SHAPES[1], batch: 1, seq: 128, steps: 1 },
    ]);
  });

  it('refuses a shape it does not know, naming the known ones', () => {
    expect(unknownShapes(['qwen2.5-0.5b'])).toBeNull();
    expect(unknownShapes(undefined)).toBeNull();
    const message = 'unknown shape(s) gpt-5; shapes: qwen2.5-0.5b, llama-3.2-1b, llama-3.2-3b';
    expect(unknownShapes(['gpt-5'])).toBe(message);
    expect(() => shapeRuns(options({ shapes: ['gpt-5'] }))).toThrow(message);
  });
});

describe('shapesDir', () => {
  it('is STUDIO_SHAPES_DIR, else a cache folder in the home directory', () => {
    expect(shapesDir({ STUDIO_SHAPES_DIR: '/data/shapes' }, '/home/u')).toBe('/data/shapes');
    expect(shapesDir({}, '/home/u')).toBe('/home/u/.cache/adapter-studio/shapes');
  });
});

describe('planShape', () => {
  const qwen = SHAPES[0];
  const found = { python: '/venv/bin/python' };
  const ready: ShapeState = {
    checkpoint: true,
    fp32Copy: true,
    maker: found,
    peft: found,
    diskFreeBytes: 100e9,
  };
  const kinds = (plan: ReturnType<typeof planShape>) =>
    plan.measurements.map((m) => `${m.side}-${m.dtype}${m.skip ? `: ${m.skip}` : ''}`);

  it('runs studio and PEFT in bf16 and fp32 when everything is there', () => {
    const plan = planShape(qwen, undefined, ready);
    expect(plan).toMatchObject({ make: false, copyFp32: false });
    expect(plan.skip).toBeUndefined();
    expect(kinds(plan)).toEqual(['studio-bf16', 'studio-fp32', 'peft-bf16', 'peft-fp32']);
  });

  it('makes what is missing: the checkpoint, then its float32 copy', () => {
    const plan = planShape(qwen, undefined, { ...ready, checkpoint: false, fp32Copy: false });
    expect(plan).toMatchObject({ make: true, copyFp32: true });
    expect(kinds(plan)).toEqual(['studio-bf16', 'studio-fp32', 'peft-bf16', 'peft-fp32']);
  });

  it('keeps to the dtypes asked for (no float32 copy for bf16 alone)', () => {
    const plan = planShape(qwen, ['bf16'], { ...ready, fp32Copy: false });
    expect(plan.copyFp32).toBe(false);
    expect(kinds(plan)).toEqual(['studio-bf16', 'peft-bf16']);
  });

  it('skips the shape when there is no checkpoint and no Python to make one', () => {
    const plan = planShape(qwen, undefined, {
      ...ready,
      checkpoint: false,
      maker: { python: null, reason: 'no Python with torch, transformers' },
    });
    expect(plan.skip).toBe(
      'no checkpoint in the shapes folder and nothing to make it with: no Python with torch, transformers',
    );
    expect(plan.make).toBe(false);
  });

  it('skips the shape when the disk cannot hold the checkpoint', () => {
    const plan = planShape(qwen, undefined, { ...ready, checkpoint: false, diskFreeBytes: 1e9 });
    expect(plan.skip).toBe('making the checkpoint needs 2.99 GB of disk, 1.00 GB free');
  });

  it('skips only the studio fp32 run when the disk cannot also hold the float32 copy', () => {
    // room for the bf16 checkpoint (0.99 GB + 2 GB margin) but not then for 1.98 GB more
    const plan = planShape(qwen, undefined, {
      ...ready,
      checkpoint: false,
      fp32Copy: false,
      diskFreeBytes: 4e9,
    });
    expect(plan).toMatchObject({ make: true, copyFp32: false });
    expect(kinds(plan)).toEqual([
      'studio-bf16',
      'studio-fp32: its float32 copy needs 3.98 GB of disk, 3.01 GB free',
      'peft-bf16',
      'peft-fp32',
    ]);
  });

  it('runs the studio alone when no Python has PEFT, saying why PEFT is skipped', () => {
    const plan = planShape(qwen, undefined, {
      ...ready,
      peft: { python: null, reason: 'no Python with peft' },
    });
    expect(kinds(plan)).toEqual([
      'studio-bf16',
      'studio-fp32',
      'peft-bf16: no Python with peft',
      'peft-fp32: no Python with peft',
    ]);
  });
});

describe('memorySkip', () => {
  it('refuses a child whose weights alone would not fit the memory available', () => {
    const params = SHAPES[2].parameters; // 3B: 6.43 GB in bf16, 12.85 GB in fp32
    expect(memorySkip(params, 'bf16', 20e9)).toBeUndefined();
    expect(memorySkip(params, 'fp32', 20e9)).toBeUndefined();
    expect(memorySkip(params, 'fp32', 12e9)).toBe(
      'its fp32 weights alone need 14.35 GB with headroom, 12.00 GB of memory available',
    );
  });
});

describe('ratios against the targets', () => {
  it('says met or not met on the two-decimal ratio it prints', () => {
    expect(targetNote(1.004, { op: '≥', value: 1 })).toBe('target ≥ 1.0×: met');
    expect(targetNote(0.99, { op: '≥', value: 1 })).toBe('target ≥ 1.0×: not met');
    expect(targetNote(0.6, { op: '≤', value: 0.6 })).toBe('target ≤ 0.6×: met');
    expect(targetNote(0.61, { op: '≤', value: 0.6 })).toBe('target ≤ 0.6×: not met');
  });

  it('divides tokens/s at equal dtype and peak RSS by PEFT-fp32', () => {
    const figures = new Map<string, StepFigures>([
      ['studio-bf16', { tokensPerSecond: 60, peakRssBytes: 5e9 }],
      ['studio-fp32', { tokensPerSecond: 90, peakRssBytes: 9e9 }],
      ['peft-bf16', { tokensPerSecond: 50, peakRssBytes: 6e9 }],
      ['peft-fp32', { tokensPerSecond: 100, peakRssBytes: 10e9 }],
    ]);
    expect(compare(figures).map((c) => [c.comparison.metric, c.comparison.config, c.ratio, c.note])).toEqual([
      ['tokens/s', 'studio bf16 / PEFT bf16', 1.2, 'target ≥ 1.0×: met'],
      ['tokens/s', 'studio fp32 / PEFT fp32', 0.9, 'target ≥ 1.0×: not met'],
      ['tokens/s', 'studio bf16 / PEFT fp32', 0.6, 'no target (for reference)'],
      ['peak RSS', 'studio fp32 / PEFT fp32', 0.9, 'target ≤ 1.0×: met'],
      ['peak RSS', 'studio bf16 / PEFT fp32', 0.5, 'target ≤ 0.6×: met'],
    ]);
  });

  it('names the side that was not measured instead of a ratio', () => {
    const figures = new Map<string, StepFigures>([
      ['studio-bf16', { tokensPerSecond: 60, peakRssBytes: 5e9 }],
    ]);
    const results = compare(figures);
    expect(results.every((c) => c.ratio === null)).toBe(true);
    expect(results.map((c) => c.note)).toEqual([
      'not measured: PEFT bf16',
      'not measured: studio fp32, PEFT fp32',
      'not measured: PEFT fp32',
      'not measured: studio fp32, PEFT fp32',
      'not measured: PEFT fp32',
    ]);
  });

  it('prints the README memory line', () => {
    expect(memoryLine(3.1e9, 0.988e9)).toBe('peak RSS 3.10 GB for weights 0.99 GB');
  });
});
