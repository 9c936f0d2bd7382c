import type { BenchOptions } from './args.ts';

/** One measured figure. Sections return rows; bench.ts prints them as tables or JSON. */
export interface BenchRow {
  /** What was measured, e.g. `1024² A·Bᵀ`. */
  name: string;
  /** Backend and route, e.g. `wasm/onnxruntime-mlas`. */
  config: string;
  value: number;
  unit: string;
  /** Extra figures or context (ms per call, shapes, notes); `skipped` (with value NaN) says why nothing was measured. */
  details?: Record<string, unknown>;
  /** A short remark printed beside the value (a target and whether it is met, a peak RSS). */
  note?: string;
  /** Set (value NaN) when the measurement was not taken, with the reason. */
  skipped?: string;
}

export interface BenchContext {
  /** Fewer sizes and repetitions, for a quick check. */
  quick: boolean;
  /** Progress lines go to stderr so stdout stays clean for `--json`. */
  log: (line: string) => void;
  /** Every flag `npm run bench` was given (section-specific ones such as `--shapes` included). */
  options: BenchOptions;
}

export interface BenchSection {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

/** Median wall time of `fn` in ms: warm-up calls, then repeats until `minMs` elapsed or `maxReps` runs. */
export function timeMs(
  fn: () => void,
  opts: { warmup?: number; minMs?: number; maxReps?: number } = {},
): number {
  const { warmup = 2, minMs = 600, maxReps = 30 } = opts;
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < 3 || performance.now() - start < minMs)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Async variant of `timeMs` for backends that read results asynchronously (WebGPU). */
export async function timeMsAsync(
  fn: () => Promise<void>,
  opts: { warmup?: number; minMs?: number; maxReps?: number } = {},
): Promise<number> {
  const { warmup = 2, minMs = 600, maxReps = 30 } = opts;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < 3 || performance.now() - start < minMs)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
