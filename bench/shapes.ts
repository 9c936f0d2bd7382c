/**
 * The pure parts of the `shapes` bench section: which shapes run with which settings, what is skipped and why,
 * and how the ratios read against issue #10's targets. bench/sections/shapes.ts does the I/O.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { PythonLookup } from '../engine/testing/python.ts';
import { type BenchOptions, type ShapeDtype, shapeDtypes } from './args.ts';
import { type Target, targetNote } from './targets.ts';

export interface Shape {
  /** As scripts/shapes/make_shapes.py names it (the folder it makes). */
  name: string;
  /** Parameters of the real model, for disk and memory checks before its checkpoint exists. */
  parameters: number;
  batch: number;
  seq: number;
  /** Per-block activation checkpointing (studio `gradientCheckpointing: on`, transformers' gradient checkpointing). */
  checkpointing: boolean;
}

/** Issue #10's shapes, each at the batch it must train at on the standard 2-core, 24 GiB machine. */
export const SHAPES: Shape[] = [
  { name: 'qwen2.5-0.5b', parameters: 494_032_768, batch: 4, seq: 256, checkpointing: false },
  { name: 'llama-3.2-1b', parameters: 1_235_814_400, batch: 4, seq: 256, checkpointing: false },
  { name: 'llama-3.2-3b', parameters: 3_212_749_824, batch: 1, seq: 256, checkpointing: true },
];

/** LoRA as the issue measures it: r 16 on all-linear (alpha 32, no dropout), AdamW as the trainer's defaults. */
export const LORA = { r: 16, loraAlpha: 32, targetModules: 'all-linear' } as const;
export const OPTIMIZER = { lr: 1e-4, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: 1 };

/** Timed steps per measurement (one warm-up step runs before them). */
export const DEFAULT_STEPS = 3;

/** The error for `--shapes` names no shape has, or null. */
export function unknownShapes(names: string[] | undefined): string | null {
  const bad = (names ?? []).filter((n) => !SHAPES.some((s) => s.name === n));
  return bad.length
    ? `unknown shape(s) ${bad.join(', ')}; shapes: ${SHAPES.map((s) => s.name).join(', ')}`
    : null;
}

export interface ShapeRun extends Shape {
  steps: number;
}

/**
 * The shapes to measure and their settings: `--shapes` picks, `--batch/--seq/--steps` override every shape;
 * `--quick` means the smallest shape at batch 1 × 64, one timed step, unless those flags say otherwise.
 */
export function shapeRuns(o: BenchOptions): ShapeRun[] {
  const error = unknownShapes(o.shapes);
  if (error) throw new Error(error);
  const picked = o.shapes
    ? SHAPES.filter((s) => o.shapes!.includes(s.name))
    : o.quick
      ? SHAPES.slice(0, 1)
      : SHAPES;
  return picked.map((s) => ({
    ...s,
    batch: o.batch ?? (o.quick ? 1 : s.batch),
    seq: o.seq ?? (o.quick ? 64 : s.seq),
    steps: o.steps ?? (o.quick ? 1 : DEFAULT_STEPS),
  }));
}

/** Where shape checkpoints are made and reused: `STUDIO_SHAPES_DIR`, else ~/.cache/adapter-studio/shapes. */
export function shapesDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  return env.STUDIO_SHAPES_DIR || join(home, '.cache', 'adapter-studio', 'shapes');
}

/** The studio's fp32 run reads a float32 copy of the bf16 checkpoint, made next to it. */
export function fp32Folder(dir: string, shape: string): string {
  return join(dir, `${shape}-fp32`);
}

export type Side = 'studio' | 'peft';

export interface Measurement {
  side: Side;
  dtype: ShapeDtype;
}

/** What a shape's measurements need and have, gathered by the section before it runs anything. */
export interface ShapeState {
  /** The bf16 checkpoint made by make_shapes.py exists. */
  checkpoint: boolean;
  /** Its float32 copy exists. */
  fp32Copy: boolean;
  /** A Python with torch and transformers (to make the checkpoint). */
  maker: PythonLookup;
  /** A Python with torch, transformers and peft (the comparison). */
  peft: PythonLookup;
  /** Free bytes in the shapes folder. */
  diskFreeBytes: number;
}

export interface ShapePlan {
  /** The whole shape is skipped (no checkpoint and no way to make one). */
  skip?: string;
  /** Run make_shapes.py first. */
  make: boolean;
  /** Write the float32 copy first. */
  copyFp32: boolean;
  measurements: (Measurement & { skip?: string })[];
}

const GB = 1e9;
/** Room left on the disk after writing a checkpoint (logs, temp files, everyone else). */
const DISK_MARGIN = 2 * GB;

export const gb = (bytes: number): string => `${(bytes / GB).toFixed(2)} GB`;

export function weightBytes(parameters: number, dtype: ShapeDtype): number {
  return parameters * (dtype === 'bf16' ? 2 : 4);
}

/** Studio measurements first, bf16 before fp32 within each side. */
export function planShape(shape: Shape, dtypes: ShapeDtype[] | undefined, state: ShapeState): ShapePlan {
  const wanted = shapeDtypes.filter((d) => (dtypes ?? shapeDtypes).includes(d));
  let disk = state.diskFreeBytes;
  const plan: ShapePlan = { make: false, copyFp32: false, measurements: [] };
  if (!state.checkpoint) {
    if (!state.maker.python) {
      return {
        ...plan,
        skip: `no checkpoint in the shapes folder and nothing to make it with: ${state.maker.reason}`,
      };
    }
    const need = weightBytes(shape.parameters, 'bf16');
    if (disk < need + DISK_MARGIN) {
      return {
        ...plan,
        skip: `making the checkpoint needs ${gb(need + DISK_MARGIN)} of disk, ${gb(disk)} free`,
      };
    }
    plan.make = true;
    disk -= need;
  }
  for (const dtype of wanted) {
    let skip: string | undefined;
    if (dtype === 'fp32' && !state.fp32Copy) {
      const need = weightBytes(shape.parameters, 'fp32');
      if (disk < need + DISK_MARGIN)
        skip = `its float32 copy needs ${gb(need + DISK_MARGIN)} of disk, ${gb(disk)} free`;
      else {
        plan.copyFp32 = true;
        disk -= need;
      }
    }
    plan.measurements.push({ side: 'studio', dtype, skip });
  }
  for (const dtype of wanted) {
    plan.measurements.push({ side: 'peft', dtype, skip: state.peft.python ? undefined : state.peft.reason });
  }
  return plan;
}

/** Room a child needs beyond its weights (activations, allocator, interpreter); a guard, not an estimate. */
const CHILD_MARGIN = 1.5 * GB;

/** Why a child must not start with this much memory available, or undefined when it may. */
export function memorySkip(
  parameters: number,
  dtype: ShapeDtype,
  availableBytes: number,
): string | undefined {
  const need = weightBytes(parameters, dtype) + CHILD_MARGIN;
  return availableBytes < need
    ? `its ${dtype} weights alone need ${gb(need)} with headroom, ${gb(availableBytes)} of memory available`
    : undefined;
}

/** One child's figures. */
export interface StepFigures {
  tokensPerSecond: number;
  peakRssBytes: number;
}

export interface Comparison {
  /** What is divided by what. */
  name: string;
  config: string;
  numerator: Measurement;
  denominator: Measurement;
  metric: 'tokens/s' | 'peak RSS';
  target?: Target;
}

/** The studio's run in one dtype against PEFT's in another. */
function versus(
  metric: Comparison['metric'],
  studio: ShapeDtype,
  peft: ShapeDtype,
  target?: Target,
): Comparison {
  return {
    name: metric === 'tokens/s' ? 'studio / PEFT tokens/s' : 'studio / PEFT-fp32 peak RSS',
    config: `studio ${studio} / PEFT ${peft}`,
    numerator: { side: 'studio', dtype: studio },
    denominator: { side: 'peft', dtype: peft },
    metric,
    target,
  };
}

/** Issue #10: tokens/s ≥ 1.0× PEFT's at equal dtype, peak RSS ≤ 1.0× PEFT-fp32, ≤ 0.6× with bf16 frozen weights. */
export const COMPARISONS: Comparison[] = [
  versus('tokens/s', 'bf16', 'bf16', { op: '≥', value: 1 }),
  versus('tokens/s', 'fp32', 'fp32', { op: '≥', value: 1 }),
  versus('tokens/s', 'bf16', 'fp32'),
  versus('peak RSS', 'fp32', 'fp32', { op: '≤', value: 1 }),
  versus('peak RSS', 'bf16', 'fp32', { op: '≤', value: 0.6 }),
];

export const measurementKey = (m: Measurement): string => `${m.side}-${m.dtype}`;

export interface ComparisonResult {
  comparison: Comparison;
  /** Null when either side was not measured. */
  ratio: number | null;
  note: string;
}

/** Every comparison whose two sides ran; a missing side gives no ratio and says which side is missing. */
export function compare(figures: Map<string, StepFigures>): ComparisonResult[] {
  return COMPARISONS.map((comparison) => {
    const a = figures.get(measurementKey(comparison.numerator));
    const b = figures.get(measurementKey(comparison.denominator));
    if (!a || !b) {
      const missing = [!a && comparison.numerator, !b && comparison.denominator]
        .filter((m): m is Measurement => Boolean(m))
        .map((m) => `${m.side === 'studio' ? 'studio' : 'PEFT'} ${m.dtype}`);
      return { comparison, ratio: null, note: `not measured: ${missing.join(', ')}` };
    }
    const ratio =
      comparison.metric === 'tokens/s'
        ? a.tokensPerSecond / b.tokensPerSecond
        : a.peakRssBytes / b.peakRssBytes;
    return {
      comparison,
      ratio,
      note: comparison.target ? targetNote(ratio, comparison.target) : 'no target (for reference)',
    };
  });
}

/** The line the README's memory table is made from. */
export function memoryLine(peakRssBytes: number, weightsBytes: number): string {
  return `peak RSS ${gb(peakRssBytes)} for weights ${gb(weightsBytes)}`;
}
