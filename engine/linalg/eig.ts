import { StudioError } from '../common/errors.ts';
import type { Matrix } from './matrix.ts';

/** Eigenvalues λ = re + i·im of a real square matrix; complex ones come in adjacent conjugate pairs. */
export interface Eigenvalues {
  re: Float64Array;
  im: Float64Array;
}

export interface EigOptions {
  /** Called with the fraction of the estimated work done (0..1), at most once per Hessenberg column / QR sweep. */
  onProgress?: (fraction: number) => void;
  /** Polled between steps; returning true aborts with `EigCancelledError`. */
  shouldStop?: () => boolean;
}

export class EigCancelledError extends StudioError {
  constructor() {
    super('cancelled', 'eigenvalue computation cancelled');
    this.name = 'EigCancelledError';
  }
}

/** Share of the work spent in the Hessenberg reduction (10/3·n³ of about 10·n³ flops in all). */
const HESSENBERG_SHARE = 1 / 3;
/** QR sweeps without deflation before giving up on one eigenvalue (exceptional shifts every 10). */
const MAX_ITERATIONS = 100;

/**
 * Estimated floating-point operations for all eigenvalues of a dense n × n matrix, without vectors
 * (Golub & Van Loan, §7.5.6: about 10·n³ for the Hessenberg reduction plus the Francis QR iteration).
 */
export function eigFlops(n: number): number {
  return 10 * n * n * n;
}

/**
 * All eigenvalues of a general real square matrix: balancing, Householder reduction to upper Hessenberg
 * form, then the Francis double-shift QR iteration on the active window (EISPACK `balanc`/`orthes`/`hqr`).
 * Computes in float64 on a copy; `a` is not modified. Backward stable: each computed eigenvalue is exact
 * for a matrix within about n·ε·‖A‖ of `a`.
 */
export function eigenvalues(a: Matrix, options: EigOptions = {}): Eigenvalues {
  if (a.rows !== a.cols) throw new Error(`eigenvalues: matrix must be square, got ${a.rows} × ${a.cols}`);
  const n = a.rows;
  const h = Float64Array.from(a.data);
  for (let i = 0; i < h.length; i++) {
    if (!Number.isFinite(h[i])) throw new Error(`eigenvalues: matrix has a non-finite entry at index ${i}`);
  }
  balance(h, n);
  hessenberg(h, n, options);
  return hqr(h, n, options);
}

function checkStop(options: EigOptions): void {
  if (options.shouldStop?.()) throw new EigCancelledError();
}

/**
 * Diagonal similarity D⁻¹AD with powers of two (exact in floating point) so rows and columns have
 * comparable norms, which reduces the rounding error of the later steps.
 */
function balance(h: Float64Array, n: number): void {
  const radix = 2;
  const sqrdx = radix * radix;
  let done = false;
  while (!done) {
    done = true;
    for (let i = 0; i < n; i++) {
      let r = 0;
      let c = 0;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        c += Math.abs(h[j * n + i]);
        r += Math.abs(h[i * n + j]);
      }
      if (c === 0 || r === 0) continue;
      const s = c + r;
      let f = 1;
      let g = r / radix;
      while (c < g) {
        f *= radix;
        c *= sqrdx;
      }
      g = r * radix;
      while (c > g) {
        f /= radix;
        c /= sqrdx;
      }
      if ((c + r) / f < 0.95 * s) {
        done = false;
        const inv = 1 / f;
        for (let j = 0; j < n; j++) h[i * n + j] *= inv;
        for (let j = 0; j < n; j++) h[j * n + i] *= f;
      }
    }
  }
}

/** Householder reduction to upper Hessenberg form in place; entries below the subdiagonal end up zero. */
function hessenberg(h: Float64Array, n: number, options: EigOptions): void {
  const ort = new Float64Array(n);
  const f = new Float64Array(n);
  for (let m = 1; m < n - 1; m++) {
    checkStop(options);
    let scale = 0;
    for (let i = m; i < n; i++) scale += Math.abs(h[i * n + m - 1]);
    if (scale !== 0) {
      let hh = 0;
      for (let i = m; i < n; i++) {
        ort[i] = h[i * n + m - 1] / scale;
        hh += ort[i] * ort[i];
      }
      let g = Math.sqrt(hh);
      if (ort[m] > 0) g = -g;
      hh -= ort[m] * g;
      ort[m] -= g;
      // H ← (I − u uᵀ/hh) H: rows m..n−1, all columns from m (row-wise, so memory is read in order).
      f.fill(0, m, n);
      for (let i = m; i < n; i++) {
        const oi = ort[i];
        const row = i * n;
        for (let j = m; j < n; j++) f[j] += oi * h[row + j];
      }
      for (let i = m; i < n; i++) {
        const oi = ort[i] / hh;
        const row = i * n;
        for (let j = m; j < n; j++) h[row + j] -= f[j] * oi;
      }
      // H ← H (I − u uᵀ/hh): every row, columns m..n−1.
      for (let i = 0; i < n; i++) {
        const row = i * n;
        let s = 0;
        for (let j = m; j < n; j++) s += ort[j] * h[row + j];
        s /= hh;
        for (let j = m; j < n; j++) h[row + j] -= s * ort[j];
      }
      h[m * n + m - 1] = scale * g;
    }
    for (let i = m + 1; i < n; i++) h[i * n + m - 1] = 0;
    const left = (n - 1 - m) / n;
    options.onProgress?.(HESSENBERG_SHARE * (1 - left * left));
  }
}

/** Francis double-shift QR on an upper Hessenberg matrix (eigenvalues only; Numerical Recipes' `hqr`). */
function hqr(a: Float64Array, n: number, options: EigOptions): Eigenvalues {
  const wr = new Float64Array(n);
  const wi = new Float64Array(n);
  const at = (i: number, j: number) => a[i * n + j];
  let anorm = 0;
  for (let i = 0; i < n; i++) {
    for (let j = Math.max(i - 1, 0); j < n; j++) anorm += Math.abs(at(i, j));
  }
  let nn = n - 1;
  let t = 0;
  let its = 0;
  const report = () =>
    options.onProgress?.(HESSENBERG_SHARE + (1 - HESSENBERG_SHARE) * (1 - ((nn + 1) / n) ** 3));
  while (nn >= 0) {
    checkStop(options);
    // Look for a negligible subdiagonal element that splits the matrix.
    let l = nn;
    for (; l >= 1; l--) {
      let s = Math.abs(at(l - 1, l - 1)) + Math.abs(at(l, l));
      if (s === 0) s = anorm;
      if (Math.abs(at(l, l - 1)) + s === s) {
        a[l * n + l - 1] = 0;
        break;
      }
    }
    let x = at(nn, nn);
    if (l === nn) {
      // One root found.
      wr[nn] = x + t;
      wi[nn] = 0;
      nn -= 1;
      its = 0;
      report();
      continue;
    }
    let y = at(nn - 1, nn - 1);
    let w = at(nn, nn - 1) * at(nn - 1, nn);
    if (l === nn - 1) {
      // Two roots found: the eigenvalues of the trailing 2 × 2 block.
      const p = 0.5 * (y - x);
      const q = p * p + w;
      let z = Math.sqrt(Math.abs(q));
      x += t;
      if (q >= 0) {
        z = p + (p >= 0 ? Math.abs(z) : -Math.abs(z));
        wr[nn - 1] = wr[nn] = x + z;
        if (z !== 0) wr[nn] = x - w / z;
        wi[nn - 1] = wi[nn] = 0;
      } else {
        wr[nn - 1] = wr[nn] = x + p;
        wi[nn - 1] = z;
        wi[nn] = -z;
      }
      nn -= 2;
      its = 0;
      report();
      continue;
    }
    if (its === MAX_ITERATIONS) {
      throw new Error(`eigenvalues: QR iteration did not converge for eigenvalue ${nn + 1} of ${n}`);
    }
    if (its > 0 && its % 10 === 0) {
      // Exceptional shift, to break cycles the standard shift can fall into.
      t += x;
      for (let i = 0; i <= nn; i++) a[i * n + i] -= x;
      const s = Math.abs(at(nn, nn - 1)) + Math.abs(at(nn - 1, nn - 2));
      x = 0.75 * s;
      y = x;
      w = -0.4375 * s * s;
    }
    its += 1;
    // Form the shift and look for two consecutive small subdiagonal elements.
    let m = nn - 2;
    let p = 0;
    let q = 0;
    let r = 0;
    let z = 0;
    for (; m >= l; m--) {
      z = at(m, m);
      r = x - z;
      const s0 = y - z;
      p = (r * s0 - w) / at(m + 1, m) + at(m, m + 1);
      q = at(m + 1, m + 1) - z - r - s0;
      r = at(m + 2, m + 1);
      const s = Math.abs(p) + Math.abs(q) + Math.abs(r);
      p /= s;
      q /= s;
      r /= s;
      if (m === l) break;
      const u = Math.abs(at(m, m - 1)) * (Math.abs(q) + Math.abs(r));
      const v = Math.abs(p) * (Math.abs(at(m - 1, m - 1)) + Math.abs(z) + Math.abs(at(m + 1, m + 1)));
      if (u + v === v) break;
    }
    for (let i = m + 2; i <= nn; i++) {
      a[i * n + i - 2] = 0;
      if (i !== m + 2) a[i * n + i - 3] = 0;
    }
    // Double QR step on rows l..nn and columns m..nn (the bulge chase).
    for (let k = m; k <= nn - 1; k++) {
      if (k !== m) {
        p = at(k, k - 1);
        q = at(k + 1, k - 1);
        r = k !== nn - 1 ? at(k + 2, k - 1) : 0;
        x = Math.abs(p) + Math.abs(q) + Math.abs(r);
        if (x !== 0) {
          p /= x;
          q /= x;
          r /= x;
        }
      }
      const norm = Math.sqrt(p * p + q * q + r * r);
      const s = p >= 0 ? norm : -norm;
      if (s === 0) continue;
      if (k === m) {
        if (l !== m) a[k * n + k - 1] = -at(k, k - 1);
      } else {
        a[k * n + k - 1] = -s * x;
      }
      p += s;
      x = p / s;
      y = q / s;
      z = r / s;
      q /= p;
      r /= p;
      const rk = k * n;
      const rk1 = rk + n;
      const rk2 = rk1 + n;
      for (let j = k; j <= nn; j++) {
        let pp = a[rk + j] + q * a[rk1 + j];
        if (k !== nn - 1) {
          pp += r * a[rk2 + j];
          a[rk2 + j] -= pp * z;
        }
        a[rk1 + j] -= pp * y;
        a[rk + j] -= pp * x;
      }
      const mmin = Math.min(nn, k + 3);
      for (let i = l; i <= mmin; i++) {
        const ri = i * n;
        let pp = x * a[ri + k] + y * a[ri + k + 1];
        if (k !== nn - 1) {
          pp += z * a[ri + k + 2];
          a[ri + k + 2] -= pp * r;
        }
        a[ri + k + 1] -= pp * q;
        a[ri + k] -= pp;
      }
    }
  }
  options.onProgress?.(1);
  return { re: wr, im: wi };
}
