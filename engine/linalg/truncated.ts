import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../random.ts';
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

/**
 * The top-`rank` singular triplets of a (m × n): u (m × rank), s (rank), v (n × rank), descending, with the
 * sign convention of `svd`. Small matrices take the exact route. Large ones use block subspace iteration
 * (the range finder of Halko–Martinsson–Tropp, iterated with Rayleigh–Ritz on each step until the residuals
 * of the top `rank` triplets are below `tolerance`), which needs only products with a and aᵀ. For tensors
 * every product with an m- or n-sized dimension runs on the active tfjs backend (native GEMM where there is
 * one); only k × k problems (k = rank + oversample) and one final Rayleigh–Ritz step run in float64 here.
 */
export function truncatedSvd(
  a: Matrix | tf.Tensor2D,
  rank: number,
  options: TruncatedSvdOptions = {},
): TruncatedSvd {
  const isTensor = a instanceof tf.Tensor;
  const [m, n] = isTensor ? (a.shape as [number, number]) : [a.rows, a.cols];
  const short = Math.min(m, n);
  if (!Number.isInteger(rank) || rank < 1 || rank > short) {
    throw new Error(
      `truncatedSvd: rank must be an integer in [1, ${short}] for a ${m} × ${n} matrix, got ${rank}`,
    );
  }
  const method = options.method ?? 'auto';
  const exactLimit = options.exactLimit ?? 256;
  if (method === 'exact' || (method === 'auto' && short <= exactLimit)) {
    const full = svd(isTensor ? fromTensor(a) : a);
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
  const settings: IterationSettings = {
    rank,
    k: Math.min(short, rank + (options.oversample ?? Math.max(10, rank))),
    maxIterations: options.maxIterations ?? 100,
    tolerance: options.tolerance ?? (isTensor ? 2e-5 : 1e-10),
    seed: options.seed ?? 0,
  };
  return isTensor ? subspaceTensor(a, settings) : subspaceDense(a, settings);
}

interface IterationSettings {
  rank: number;
  k: number;
  maxIterations: number;
  tolerance: number;
  seed: number;
}

/** Tracks the best iterate; rounding puts a floor under the residual, so stop once it no longer improves. */
class Progress {
  best = Number.POSITIVE_INFINITY;
  bestIteration = 0;
  private since = 0;

  constructor(private readonly tolerance: number) {}

  /** Records a residual; true when this iterate is the best so far. */
  record(residual: number, iteration: number): boolean {
    const improved = residual < this.best;
    this.since = residual < 0.9 * this.best ? 0 : this.since + 1;
    if (improved) {
      this.best = residual;
      this.bestIteration = iteration;
    }
    return improved;
  }

  get done(): boolean {
    return this.best <= this.tolerance || this.since >= 8;
  }
}

/** Float64 subspace iteration on dense data. */
function subspaceDense(a: Matrix, settings: IterationSettings): TruncatedSvd {
  const { rank, k, maxIterations, tolerance, seed } = settings;
  const at = transpose(a);
  let q = orthonormalize(matmul(a, gaussian(a.cols, k, seed)));
  const progress = new Progress(tolerance);
  let best: TruncatedSvd | null = null;
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    // Z = aᵀQ = Bᵀ for the projected B = Qᵀa; Z = Uz Sz Vzᵀ gives a ≈ (Q Vz) Sz Uzᵀ.
    const z = svd(matmul(at, q));
    const u = matmul(q, z.v);
    const av = matmul(a, z.u);
    const s0 = z.s[0];
    let residual = 0;
    for (let i = 0; i < rank; i++) {
      let r2 = 0;
      for (let row = 0; row < a.rows; row++) {
        const d = av.data[row * k + i] - z.s[i] * u.data[row * k + i];
        r2 += d * d;
      }
      residual = Math.max(residual, s0 > 0 ? Math.sqrt(r2) / s0 : 0);
    }
    if (progress.record(residual, iteration)) {
      const ut = sliceCols(u, 0, rank);
      const vt = sliceCols(z.u, 0, rank);
      applySignConvention(ut, vt);
      const converged = residual <= tolerance;
      best = {
        u: ut,
        s: z.s.slice(0, rank),
        v: vt,
        method: 'subspace',
        iterations: iteration,
        residual,
        converged,
      };
    }
    if (progress.done) break;
    q = orthonormalize(av);
  }
  return best!;
}

/**
 * Subspace iteration with tensor products. Each step: Z = aᵀQ, the k × k Gram ZᵀZ = E·Σ²·Eᵀ (float64),
 * Ritz vectors V = Z·E·Σ⁻¹ and U = Q·E, the next block Y = a·V ≈ U·Σ, whose columns are orthogonal up to
 * their scale: normalising them first makes Cholesky QR (twice, CholeskyQR2) stable. The best block gets a
 * final float64 Rayleigh–Ritz step (exact SVD of aᵀQ) for accuracy beyond the Gram's squared condition.
 */
function subspaceTensor(a: tf.Tensor2D, settings: IterationSettings): TruncatedSvd {
  const { rank, k, maxIterations, tolerance, seed } = settings;
  const n = a.shape[1];
  const progress = new Progress(tolerance);
  let q = orthonormalTensor(tf.tidy(() => tf.matMul(a, toTensor(gaussian(n, k, seed)))));
  let bestQ: tf.Tensor2D | null = null;
  try {
    for (let iteration = 1; iteration <= maxIterations; iteration++) {
      const z = tf.matMul(a, q, true, false);
      const gram = take(tf.tidy(() => tf.matMul(z, z, true, false)));
      const eig = svd(gram);
      const sigma = Array.from(eig.s, (x) => Math.sqrt(Math.max(x, 0)));
      if (!(sigma[0] > 0)) {
        z.dispose();
        bestQ?.dispose();
        bestQ = q;
        progress.record(0, iteration);
        break;
      }
      const scaled = matrix(k, k, eig.u.data);
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) scaled.data[i * k + j] *= sigma[j] > sigma[0] * 1e-7 ? 1 / sigma[j] : 0;
      }
      const { y, residual } = tf.tidy(() => {
        const y = tf.matMul(a, tf.matMul(z, toTensor(scaled))) as tf.Tensor2D;
        const u = tf.matMul(q, toTensor(eig.u));
        const diff = tf.sub(
          tf.slice(y, [0, 0], [-1, rank]),
          tf.mul(tf.slice(u, [0, 0], [-1, rank]), sigma.slice(0, rank)),
        );
        const norms = tf.norm(diff, 'euclidean', 0).dataSync();
        return { y, residual: Math.max(...Array.from(norms)) / sigma[0] };
      });
      z.dispose();
      if (progress.record(residual, iteration)) {
        bestQ?.dispose();
        bestQ = q;
      } else {
        q.dispose();
      }
      if (progress.done) {
        y.dispose();
        break;
      }
      q = orthonormalTensor(y);
    }
    if (bestQ !== q) q.dispose();
    const z = take(tf.tidy(() => tf.matMul(a, bestQ!, true, false)));
    const ritz = svd(z);
    const uk = take(tf.tidy(() => tf.matMul(bestQ!, toTensor(sliceCols(ritz.v, 0, rank)))));
    const vk = sliceCols(ritz.u, 0, rank);
    applySignConvention(uk, vk);
    return {
      u: uk,
      s: ritz.s.slice(0, rank),
      v: vk,
      method: 'subspace',
      iterations: progress.bestIteration,
      residual: progress.best,
      converged: progress.best <= tolerance,
    };
  } finally {
    bestQ?.dispose();
  }
}

/**
 * An orthonormal basis (m × k tensor) of the columns of `y`, which it takes ownership of: CholeskyQR2 on
 * column-normalised y, falling back to float64 Householder QR when y is numerically rank-deficient.
 */
function orthonormalTensor(y: tf.Tensor2D): tf.Tensor2D {
  let q: tf.Tensor2D | null = null;
  const norms = tf.tidy(() => tf.norm(y, 'euclidean', 0).dataSync());
  if (norms.every((x) => x > 0 && Number.isFinite(x))) {
    q = tf.tidy(() => tf.div(y, tf.tensor1d(norms)) as tf.Tensor2D);
    for (let pass = 0; pass < 2 && q; pass++) {
      const factor = choleskyInverseTranspose(take(tf.tidy(() => tf.matMul(q!, q!, true, false))));
      const next: tf.Tensor2D | null = factor
        ? tf.tidy(() => tf.matMul(q!, toTensor(factor)) as tf.Tensor2D)
        : null;
      q.dispose();
      q = next;
    }
  }
  if (!q) q = toTensor(orthonormalize(fromTensor(y)));
  y.dispose();
  return q;
}

/** Reads a tensor into float64 and disposes it. */
function take(t: tf.Tensor): Matrix {
  const m = fromTensor(t);
  t.dispose();
  return m;
}

/** L⁻ᵀ for the Cholesky factor G = L·Lᵀ of a symmetric positive definite k × k matrix, or null if G is not. */
function choleskyInverseTranspose(g: Matrix): Matrix | null {
  const k = g.rows;
  const l = matrix(k, k);
  for (let j = 0; j < k; j++) {
    let d = g.data[j * k + j];
    for (let p = 0; p < j; p++) d -= l.data[j * k + p] ** 2;
    if (!(d > 1e-10 * Math.abs(g.data[j * k + j]))) return null;
    const ljj = Math.sqrt(d);
    l.data[j * k + j] = ljj;
    for (let i = j + 1; i < k; i++) {
      let x = g.data[i * k + j];
      for (let p = 0; p < j; p++) x -= l.data[i * k + p] * l.data[j * k + p];
      l.data[i * k + j] = x / ljj;
    }
  }
  // Forward substitution column by column: L·X = I gives X = L⁻¹ (lower triangular).
  const inv = matrix(k, k);
  for (let c = 0; c < k; c++) {
    for (let i = c; i < k; i++) {
      let x = i === c ? 1 : 0;
      for (let p = c; p < i; p++) x -= l.data[i * k + p] * inv.data[p * k + c];
      inv.data[i * k + c] = x / l.data[i * k + i];
    }
  }
  return transpose(inv);
}

/** A seeded standard-normal block (Box–Muller); the start block only needs to be generic. */
function gaussian(rows: number, cols: number, seed: number): Matrix {
  const uniform = mulberry32(seed);
  const out = matrix(rows, cols);
  for (let i = 0; i < out.data.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    out.data[i] = r * Math.cos(theta);
    if (i + 1 < out.data.length) out.data[i + 1] = r * Math.sin(theta);
  }
  return out;
}
