import * as tf from '@tensorflow/tfjs-core';
import { fromTensor, type Matrix, matmul, matrix, sliceCols, toTensor, transpose } from './matrix.ts';
import { orthonormalize } from './qr.ts';
import { applySignConvention, type Svd, svd } from './svd.ts';

export interface TruncatedSvdOptions {
  /** `auto` (default): exact Jacobi when min(m, n) ≤ `exactLimit`, subspace iteration above. */
  method?: 'auto' | 'exact' | 'subspace';
  exactLimit?: number;
  /**
   * Extra subspace columns beyond the rank (default max(10, rank)): the error shrinks per iteration by about
   * σ_{rank+oversample+1}/σ_rank, so more columns converge in fewer (costlier) iterations.
   */
  oversample?: number;
  maxIterations?: number;
  /**
   * Stop when every top-r residual ‖a·vᵢ − sᵢ·uᵢ‖ / s₀ is below this. Defaults: 1e-10 for float64 input,
   * 2e-5 for tensors (their products run in float32).
   */
  tolerance?: number;
  /** Seed of the Gaussian start block, so results are reproducible. */
  seed?: number;
}

export interface TruncatedSvd extends Svd {
  method: 'exact' | 'subspace';
  iterations: number;
  /** The largest top-r residual ‖a·vᵢ − sᵢ·uᵢ‖ / s₀ reached (0 for the exact route). */
  residual: number;
  /** False when iteration stopped (limit or float32 stagnation) above `tolerance`. */
  converged: boolean;
}

/** Products with a, where a is float64 data or a (possibly large) tensor multiplied on its backend. */
interface Operator {
  rows: number;
  cols: number;
  float32: boolean;
  /** a · x */
  apply(x: Matrix): Matrix;
  /** aᵀ · x */
  applyT(x: Matrix): Matrix;
  dense(): Matrix;
}

function denseOperator(a: Matrix): Operator {
  const at = transpose(a);
  return {
    rows: a.rows,
    cols: a.cols,
    float32: false,
    apply: (x) => matmul(a, x),
    applyT: (x) => matmul(at, x),
    dense: () => a,
  };
}

function tensorOperator(a: tf.Tensor2D): Operator {
  const product = (x: Matrix, transposeA: boolean): Matrix => {
    const out = tf.tidy(() => tf.matMul(a, toTensor(x), transposeA, false));
    const m = fromTensor(out);
    out.dispose();
    return m;
  };
  return {
    rows: a.shape[0],
    cols: a.shape[1],
    float32: true,
    apply: (x) => product(x, false),
    applyT: (x) => product(x, true),
    dense: () => fromTensor(a),
  };
}

/**
 * The top-`rank` singular triplets of a (m × n): u (m × rank), s (rank), v (n × rank), descending, with the
 * sign convention of `svd`. Small matrices take the exact route. Large ones use block subspace iteration
 * (the range finder of Halko–Martinsson–Tropp, iterated with Rayleigh–Ritz on each step until the residuals
 * of the top `rank` triplets are below `tolerance`), which needs only products with a and aᵀ: for tensors
 * those run on the active tfjs backend.
 */
export function truncatedSvd(
  a: Matrix | tf.Tensor2D,
  rank: number,
  options: TruncatedSvdOptions = {},
): TruncatedSvd {
  const op = a instanceof tf.Tensor ? tensorOperator(a) : denseOperator(a);
  const { rows: m, cols: n } = op;
  const short = Math.min(m, n);
  if (!Number.isInteger(rank) || rank < 1 || rank > short) {
    throw new Error(
      `truncatedSvd: rank must be an integer in [1, ${short}] for a ${m} × ${n} matrix, got ${rank}`,
    );
  }
  const method = options.method ?? 'auto';
  const exactLimit = options.exactLimit ?? 256;
  if (method === 'exact' || (method === 'auto' && short <= exactLimit)) {
    const full = svd(op.dense());
    return {
      u: sliceCols(full.u, 0, rank),
      s: full.s.slice(0, rank),
      v: sliceCols(full.v, 0, rank),
      method: 'exact',
      iterations: 0,
      residual: 0,
      converged: true,
    };
  }

  const k = Math.min(short, rank + (options.oversample ?? Math.max(10, rank)));
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = options.tolerance ?? (op.float32 ? 2e-5 : 1e-10);
  let q = orthonormalize(op.apply(gaussian(n, k, options.seed ?? 0)));
  let best: TruncatedSvd | null = null;
  let sinceImprovement = 0;
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    // Z = aᵀQ = Bᵀ for the projected B = Qᵀa; Z = Uz Sz Vzᵀ gives a ≈ (Q Vz) Sz Uzᵀ.
    const z = svd(op.applyT(q));
    const u = matmul(q, z.v);
    const av = op.apply(z.u);
    const s0 = z.s[0];
    let residual = 0;
    for (let i = 0; i < rank; i++) {
      let r2 = 0;
      for (let row = 0; row < m; row++) {
        const d = av.data[row * k + i] - z.s[i] * u.data[row * k + i];
        r2 += d * d;
      }
      residual = Math.max(residual, s0 > 0 ? Math.sqrt(r2) / s0 : 0);
    }
    const converged = residual <= tolerance;
    if (!best || residual < best.residual) {
      // Rounding (float32 products) puts a floor under the residual: stop once it no longer improves.
      sinceImprovement = !best || residual < 0.9 * best.residual ? 0 : sinceImprovement + 1;
      const ut = sliceCols(u, 0, rank);
      const vt = sliceCols(z.u, 0, rank);
      applySignConvention(ut, vt);
      best = {
        u: ut,
        s: z.s.slice(0, rank),
        v: vt,
        method: 'subspace',
        iterations: iteration,
        residual,
        converged,
      };
    } else {
      sinceImprovement++;
    }
    if (converged || sinceImprovement >= 8) break;
    q = orthonormalize(av);
  }
  return best!;
}

/** A seeded standard-normal block (mulberry32 + Box–Muller); the start block only needs to be generic. */
function gaussian(rows: number, cols: number, seed: number): Matrix {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = matrix(rows, cols);
  for (let i = 0; i < out.data.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    out.data[i] = r * Math.cos(theta);
    if (i + 1 < out.data.length) out.data[i + 1] = r * Math.sin(theta);
  }
  return out;
}
