import { type Matrix, matrix } from '../linalg/index.ts';
import { lowRankSvd } from './spectrum.ts';

/**
 * Spectrum-driven resize of a low-rank adapter (kohya's resize_lora.py criteria): per module, a new rank from
 * ΔW's singular values σ₁ ≥ σ₂ ≥ …, and the exact truncated SVD of ΔW at that rank.
 */
export const RESIZE_CRITERIA = ['sv_ratio', 'sv_fro', 'sv_cumulative', 'size'] as const;
export type ResizeCriterion = (typeof RESIZE_CRITERIA)[number];

export interface ResizeSpec {
  criterion: ResizeCriterion;
  /** sv_ratio: σ₁/σᵢ limit (> 1); sv_fro, sv_cumulative: fraction in (0, 1]; size: bytes of the resized adapter. */
  value: number;
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9 };

/** `sv_fro=0.99`, `sv_ratio=20`, `sv_cumulative=0.9`, `size=2MB`; anything else is an error naming the problem. */
export function parseResizeSpec(text: string): ResizeSpec {
  const m = /^\s*([a-z_]+)\s*=\s*(.+?)\s*$/.exec(text);
  const criteria = RESIZE_CRITERIA.join(', ');
  if (!m) throw new Error(`resize "${text}": expected <criterion>=<value> with criterion one of ${criteria}`);
  const criterion = m[1] as ResizeCriterion;
  if (!(RESIZE_CRITERIA as readonly string[]).includes(criterion)) {
    throw new Error(`resize "${text}": unknown criterion "${m[1]}" (one of ${criteria})`);
  }
  if (criterion === 'size') {
    const s = /^(\d+(?:\.\d+)?)\s*([KMG]?B?)$/i.exec(m[2]);
    if (!s)
      throw new Error(
        `resize "${text}": size must be a number of bytes, optionally with K, M or G (e.g. 2MB)`,
      );
    const value = Number(s[1]) * SIZE_UNITS[s[2].toUpperCase()];
    if (!(value > 0)) throw new Error(`resize "${text}": size must be positive`);
    return { criterion, value };
  }
  const value = Number(m[2]);
  if (!Number.isFinite(value)) throw new Error(`resize "${text}": "${m[2]}" is not a number`);
  if (criterion === 'sv_ratio' && !(value > 1))
    throw new Error(`resize "${text}": sv_ratio must be > 1 (σ₁/σᵢ)`);
  if (criterion !== 'sv_ratio' && !(value > 0 && value <= 1)) {
    throw new Error(`resize "${text}": ${criterion} must be a fraction in (0, 1]`);
  }
  return { criterion, value };
}

export function formatResizeSpec(spec: ResizeSpec): string {
  return `${spec.criterion}=${spec.value}`;
}

/** ΔW's spectrum at one module, with the shape that sets what a rank costs. */
export interface ModuleSpectrum {
  module: string;
  rows: number;
  cols: number;
  /** Singular values, descending (the adapter's current rank of them). */
  singularValues: number[];
}

export interface ModuleResize {
  module: string;
  rows: number;
  cols: number;
  rank: number;
  newRank: number;
  /** ‖ΔW_k‖_F / ‖ΔW‖_F. */
  retainedFrobenius: number;
  /** ‖ΔW_k‖_F² / ‖ΔW‖_F² (kohya's "retained energy" is this for sv_fro). */
  retainedEnergy: number;
  /** Σᵢ≤k σᵢ / Σ σᵢ. */
  retainedCumulative: number;
  bytesBefore: number;
  bytesAfter: number;
  bytesSaved: number;
}

export interface ResizeProposal {
  spec: ResizeSpec;
  modules: ModuleResize[];
  bytesBefore: number;
  bytesAfter: number;
  /** Σ kept σᵢ² / Σ σᵢ² over all modules. */
  retainedEnergy: number;
}

/** F32 bytes of a rank-r LoRA pair at a rows × cols module (lora_A r × cols, lora_B rows × r). */
export function loraBytes(rows: number, cols: number, rank: number): number {
  return 4 * rank * (rows + cols);
}

/** torch.searchsorted(sorted, v) (left): the first index whose value is ≥ v. */
function searchsorted(sorted: number[], v: number): number {
  let i = 0;
  while (i < sorted.length && sorted[i] < v) i++;
  return i;
}

/** torch.cumsum(x) / sum(x). */
function cumulativeShares(x: number[]): number[] {
  const total = x.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let acc = 0;
  for (const v of x) {
    acc += v;
    out.push(acc / total);
  }
  return out;
}

/** kohya's MIN_SV: a ΔW whose largest singular value is below this keeps rank 1. */
const MIN_SV = 1e-6;

/**
 * kohya's index_sv_ratio / index_sv_fro / index_sv_cumulative on the module's singular values, clamped to
 * [1, min(rank, min(rows, cols) − 1)] as kohya clamps its dense spectrum's length minus one.
 */
export function rankFor(
  s: ArrayLike<number>,
  rows: number,
  cols: number,
  criterion: Exclude<ResizeCriterion, 'size'>,
  target: number,
): number {
  const values = Array.from(s);
  const cap = Math.max(1, Math.min(values.length, Math.min(rows, cols) - 1));
  if (values.length === 0 || values[0] <= MIN_SV) return 1;
  let index: number;
  if (criterion === 'sv_ratio') {
    const min = values[0] / target;
    index = values.filter((v) => v > min).length;
  } else if (criterion === 'sv_fro') {
    index = searchsorted(cumulativeShares(values.map((v) => v * v)), target * target) + 1;
  } else {
    index = searchsorted(cumulativeShares(values), target) + 1;
  }
  return Math.max(1, Math.min(index, cap));
}

/**
 * Ranks for a global size target: every module keeps its top direction, then directions are added in order of
 * σᵢ² per byte they cost until the next would exceed the target (a greedy maximum of the Frobenius energy
 * kept over the whole adapter).
 */
function ranksForSize(spectra: ModuleSpectrum[], bytes: number): number[] {
  const ranks = spectra.map((m) => (m.singularValues.length > 0 ? 1 : 0));
  let used = spectra.reduce((sum, m, i) => sum + loraBytes(m.rows, m.cols, ranks[i]), 0);
  const candidates: { module: number; gain: number; cost: number }[] = [];
  spectra.forEach((m, i) => {
    const cap = Math.max(1, Math.min(m.singularValues.length, Math.min(m.rows, m.cols) - 1));
    for (let j = 1; j < cap; j++) {
      const cost = loraBytes(m.rows, m.cols, 1);
      candidates.push({ module: i, gain: m.singularValues[j] ** 2 / cost, cost });
    }
  });
  // within a module σ is descending, so gains are too: sorting keeps each module's directions in order
  candidates.sort((a, b) => b.gain - a.gain || a.module - b.module);
  for (const c of candidates) {
    if (used + c.cost > bytes) continue;
    ranks[c.module]++;
    used += c.cost;
  }
  return ranks;
}

export function proposeResize(spectra: ModuleSpectrum[], spec: ResizeSpec): ResizeProposal {
  const ranks =
    spec.criterion === 'size'
      ? ranksForSize(spectra, spec.value)
      : spectra.map((m) =>
          rankFor(
            m.singularValues,
            m.rows,
            m.cols,
            spec.criterion as Exclude<ResizeCriterion, 'size'>,
            spec.value,
          ),
        );
  let energyAll = 0;
  let energyKept = 0;
  const modules = spectra.map((m, i): ModuleResize => {
    const s = m.singularValues;
    const k = ranks[i];
    const sq = s.map((v) => v * v);
    const total = sq.reduce((a, b) => a + b, 0);
    const kept = sq.slice(0, k).reduce((a, b) => a + b, 0);
    const sum = s.reduce((a, b) => a + b, 0);
    energyAll += total;
    energyKept += kept;
    const bytesBefore = loraBytes(m.rows, m.cols, s.length);
    const bytesAfter = loraBytes(m.rows, m.cols, k);
    return {
      module: m.module,
      rows: m.rows,
      cols: m.cols,
      rank: s.length,
      newRank: k,
      retainedFrobenius: total === 0 ? 1 : Math.sqrt(kept / total),
      retainedEnergy: total === 0 ? 1 : kept / total,
      retainedCumulative: sum === 0 ? 1 : s.slice(0, k).reduce((a, b) => a + b, 0) / sum,
      bytesBefore,
      bytesAfter,
      bytesSaved: bytesBefore - bytesAfter,
    };
  });
  return {
    spec,
    modules,
    bytesBefore: modules.reduce((a, m) => a + m.bytesBefore, 0),
    bytesAfter: modules.reduce((a, m) => a + m.bytesAfter, 0),
    retainedEnergy: energyAll === 0 ? 1 : energyKept / energyAll,
  };
}

/**
 * The rank-k truncated SVD of ΔW = left · right as LoRA factors: B = U_k·√S_k (rows × k), A = √S_k·V_kᵀ
 * (k × cols), so B·A = U_k S_k V_kᵀ exactly (the best rank-k approximation, Eckart–Young). From thin QR of
 * both factors, never forming ΔW.
 */
export function truncatedFactors(
  left: Matrix,
  right: Matrix,
  rank: number,
): { b: Matrix; a: Matrix; s: Float64Array } {
  const { s, u, v } = lowRankSvd(left, right, true);
  const k = Math.min(rank, s.length);
  const b = matrix(left.rows, k);
  const a = matrix(k, right.cols);
  for (let j = 0; j < k; j++) {
    const root = Math.sqrt(s[j]);
    for (let i = 0; i < left.rows; i++) b.data[i * k + j] = u!.data[i * u!.cols + j] * root;
    for (let c = 0; c < right.cols; c++) a.data[j * right.cols + c] = v!.data[c * v!.cols + j] * root;
  }
  return { b, a, s };
}
