import { basename } from 'node:path';
import type { AdapterInstance } from '../adapters/types.ts';
import { type Matrix, matmul, svd, transpose } from '../linalg/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { loadRunAdapter, type RunAdapter } from '../runs/index.ts';
import { DENSE_SPECTRUM_LIMIT, lowRankSvd } from './spectrum.ts';
import { writeComparison } from './store.ts';
import { readDense, readFactors } from './tensors.ts';
import {
  ANALYSIS_VERSION,
  type Comparison,
  type DifferenceMatrix,
  type ModuleComparison,
  type RunRef,
  type SubspaceSimilarity,
} from './types.ts';

/** One side of a comparison: an adapter on its (loaded) base model. */
export interface CompareSide {
  instance: AdapterInstance;
  model: LoadedModel;
  dir: string;
  step?: number | null;
}

export interface CompareOptions {
  /** Module for the down-sampled difference matrix (default: the first common module). */
  module?: string;
  /** Dimension of the singular subspaces compared (default 8, capped by both ranks). */
  topK?: number;
  /** Largest side of the difference heatmap (default 64). */
  maxCells?: number;
}

/** Relative tolerance for "the same base weight" across two loaded copies of a model. */
const SAME_BASE_TOLERANCE = 1e-6;

function trainableCount(instance: AdapterInstance): number {
  let n = 0;
  for (const p of instance.trainable()) n += p.variable.size;
  return n;
}

function runRef(side: CompareSide): RunRef {
  return {
    dir: side.dir,
    adapterName: side.instance.name,
    method: side.instance.method,
    step: side.step ?? null,
    trainable: trainableCount(side.instance),
  };
}

/** Orthonormal top-k singular vectors of ΔW (left: rows × k, right: cols × k), or null if unavailable. */
async function topSubspaces(
  instance: AdapterInstance,
  module: string,
  delta: Matrix,
  k: number,
): Promise<{ u: Matrix; v: Matrix; rank: number } | null> {
  const factors = await readFactors(instance.layers.get(module)!);
  let u: Matrix;
  let v: Matrix;
  let s: Float64Array;
  if (factors) {
    const d = lowRankSvd(factors.left, factors.right, true);
    u = d.u!;
    v = d.v!;
    s = d.s;
  } else if (delta.rows * delta.cols <= DENSE_SPECTRUM_LIMIT) {
    ({ u, v, s } = svd(delta));
  } else {
    return null;
  }
  // Directions with a negligible singular value are numerical noise, not part of the update's subspace.
  let rank = 0;
  while (rank < s.length && s[rank] > 1e-10 * s[0]) rank++;
  const keep = Math.min(k, rank);
  const cut = (m: Matrix) => {
    const out = { rows: m.rows, cols: keep, data: new Float64Array(m.rows * keep) };
    for (let i = 0; i < m.rows; i++)
      for (let j = 0; j < keep; j++) out.data[i * keep + j] = m.data[i * m.cols + j];
    return out;
  };
  return { u: cut(u), v: cut(v), rank };
}

/** Principal-angle cosines between the column spaces of two orthonormal bases with the same k. */
export function subspaceSimilarity(a: Matrix, b: Matrix): SubspaceSimilarity {
  const k = Math.min(a.cols, b.cols);
  if (k === 0) return { k: 0, cosines: [], similarity: 0 };
  const m = matmul(transpose(a), b);
  const cosines = Array.from(svd(m).s.slice(0, k), (c) => Math.min(1, c));
  let f2 = 0;
  for (const x of m.data) f2 += x * x;
  return { k, cosines, similarity: f2 / k };
}

/** Block means of a rows × cols matrix on a grid of at most maxCells × maxCells. */
export function downsample(module: string, m: Matrix, maxCells: number): DifferenceMatrix {
  const rows = Math.min(m.rows, maxCells);
  const cols = Math.min(m.cols, maxCells);
  const values = new Array<number>(rows * cols).fill(0);
  const counts = new Array<number>(rows * cols).fill(0);
  let maxAbs = 0;
  for (let i = 0; i < m.rows; i++) {
    const bi = Math.floor((i * rows) / m.rows);
    for (let j = 0; j < m.cols; j++) {
      const x = m.data[i * m.cols + j];
      const cell = bi * cols + Math.floor((j * cols) / m.cols);
      values[cell] += x;
      counts[cell] += 1;
      maxAbs = Math.max(maxAbs, Math.abs(x));
    }
  }
  return {
    module,
    sourceRows: m.rows,
    sourceCols: m.cols,
    rows,
    cols,
    values: values.map((v, i) => v / counts[i]),
    maxAbs,
  };
}

/**
 * Per module: cosine of ΔW_a and ΔW_b, cosine of the adapted weights, ‖ΔW_a − ΔW_b‖_F and principal angles
 * of the top-k singular subspaces; plus a down-sampled ΔW_a − ΔW_b for one module and both budgets.
 * Dense per module (one module's W0, ΔW_a and ΔW_b in float64 at a time). Both sides must share the base
 * weights: a module whose W0 differs is an error naming it.
 */
export async function compareAdapters(
  a: CompareSide,
  b: CompareSide,
  options: CompareOptions = {},
): Promise<Comparison> {
  const topK = options.topK ?? 8;
  const modulesA = [...a.instance.layers.keys()];
  const modulesB = new Set(b.instance.layers.keys());
  const common = modulesA.filter((m) => modulesB.has(m));
  const pick = options.module ?? common[0];
  if (options.module !== undefined && !common.includes(options.module)) {
    throw new Error(
      `compare: module "${options.module}" is not adapted in both runs (common: ${common.slice(0, 5).join(', ')}${common.length > 5 ? ', …' : ''})`,
    );
  }
  const modules: ModuleComparison[] = [];
  let difference: DifferenceMatrix | null = null;
  for (const module of common) {
    const da = await readDense(a.model.layers.get(module)!, a.instance.layers.get(module)!, a.instance.name);
    const db = await readDense(b.model.layers.get(module)!, b.instance.layers.get(module)!, b.instance.name);
    const w0 = da.base.data;
    let w0Norm2 = 0;
    let baseDiff = 0;
    let baseMax = 0;
    const sameShape = da.base.rows === db.base.rows && da.base.cols === db.base.cols;
    for (let i = 0; i < w0.length; i++) {
      w0Norm2 += w0[i] * w0[i];
      baseMax = Math.max(baseMax, Math.abs(w0[i]));
      if (sameShape) baseDiff = Math.max(baseDiff, Math.abs(w0[i] - db.base.data[i]));
    }
    if (!sameShape || baseDiff > SAME_BASE_TOLERANCE * baseMax) {
      throw new Error(
        `compare: the runs do not share a base weight at ${module} (${a.dir} vs ${b.dir}; PiSSA/OLoRA runs keep a residual there)`,
      );
    }
    const x = da.delta.data;
    const y = db.delta.data;
    let xx = 0;
    let yy = 0;
    let xy = 0;
    let wx = 0;
    let wy = 0;
    let diff2 = 0;
    for (let i = 0; i < x.length; i++) {
      xx += x[i] * x[i];
      yy += y[i] * y[i];
      xy += x[i] * y[i];
      wx += w0[i] * x[i];
      wy += w0[i] * y[i];
      diff2 += (x[i] - y[i]) ** 2;
    }
    const adaptedA = w0Norm2 + 2 * wx + xx;
    const adaptedB = w0Norm2 + 2 * wy + yy;
    const sa = await topSubspaces(a.instance, module, da.delta, topK);
    const sb = await topSubspaces(b.instance, module, db.delta, topK);
    const k = Math.min(sa?.u.cols ?? 0, sb?.u.cols ?? 0);
    const firstK = (m: Matrix): Matrix => ({
      rows: m.rows,
      cols: k,
      data: Float64Array.from(
        { length: m.rows * k },
        (_, idx) => m.data[Math.floor(idx / k) * m.cols + (idx % k)],
      ),
    });
    modules.push({
      module,
      normA: Math.sqrt(xx),
      normB: Math.sqrt(yy),
      cosineDelta: xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : null,
      cosineAdapted: (w0Norm2 + wx + wy + xy) / Math.sqrt(adaptedA * adaptedB),
      differenceFrobenius: Math.sqrt(diff2),
      subspace:
        sa && sb && k > 0
          ? {
              left: subspaceSimilarity(firstK(sa.u), firstK(sb.u)),
              right: subspaceSimilarity(firstK(sa.v), firstK(sb.v)),
            }
          : null,
    });
    if (module === pick) {
      const d = { rows: da.delta.rows, cols: da.delta.cols, data: new Float64Array(x.length) };
      for (let i = 0; i < x.length; i++) d.data[i] = x[i] - y[i];
      difference = downsample(module, d, options.maxCells ?? 64);
    }
  }
  return {
    version: ANALYSIS_VERSION,
    kind: 'compare',
    createdAt: new Date().toISOString(),
    a: runRef(a),
    b: runRef(b),
    modules,
    onlyInA: modulesA.filter((m) => !modulesB.has(m)),
    onlyInB: [...modulesB].filter((m) => !a.instance.layers.has(m)),
    difference,
    budget: {
      a: trainableCount(a.instance),
      b: trainableCount(b.instance),
      fullFineTuning: a.model.spec.numParameters,
    },
  };
}

/** One run to compare: a run or checkpoint folder (loaded here), or an adapter already loaded from one. */
export type RunSide = string | RunAdapter;

export interface CompareRunsOptions extends CompareOptions {
  /** Also save the comparison as `compare-<run B id>.json` in run A's `analysis/` (default false). */
  write?: boolean;
}

async function loadSide(side: RunSide): Promise<{ adapter: RunAdapter; owned: boolean }> {
  return typeof side === 'string'
    ? { adapter: await loadRunAdapter(side), owned: true }
    : { adapter: side, owned: false };
}

function release(side: { adapter: RunAdapter; owned: boolean }): void {
  if (!side.owned) return;
  side.adapter.instance.dispose();
  side.adapter.model.dispose();
}

/**
 * Compares the adapters of two runs (their latest checkpoints, or the checkpoints given) on the same base
 * model: loads the sides given as folders, runs `compareAdapters`, optionally saves the result in run A's
 * analysis folder, and frees what it loaded. Both models are in memory at once.
 */
export async function compareRuns(
  runA: RunSide,
  runB: RunSide,
  options: CompareRunsOptions = {},
): Promise<{ comparison: Comparison; path: string | null }> {
  const a = await loadSide(runA);
  try {
    const b = await loadSide(runB);
    try {
      const side = ({ adapter }: { adapter: RunAdapter }): CompareSide => ({
        instance: adapter.instance,
        model: adapter.model,
        dir: adapter.runDir,
        step: adapter.state.step,
      });
      const comparison = await compareAdapters(side(a), side(b), options);
      const path = options.write
        ? await writeComparison(side(a).dir, basename(side(b).dir), comparison)
        : null;
      return { comparison, path };
    } finally {
      release(b);
    }
  } finally {
    release(a);
  }
}
