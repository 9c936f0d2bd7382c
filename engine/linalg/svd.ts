import { type Matrix, matmul, matrix, transpose } from './matrix.ts';
import { qr } from './qr.ts';

/**
 * Thin SVD a (m × n) = u · diag(s) · vᵀ with u (m × k), s (k), v (n × k), k = min(m, n) (or the requested
 * rank for truncated routines). Singular values are in descending order.
 *
 * Sign convention (as sklearn's `svd_flip` with the u-based decision): each pair (uᵢ, vᵢ) is flipped so the
 * entry of uᵢ with the largest magnitude is positive (the first such entry on an exact tie). LAPACK/numpy
 * leave the signs free, so references must be flipped the same way before comparing.
 */
export interface Svd {
  u: Matrix;
  s: Float64Array;
  v: Matrix;
}

const MAX_SWEEPS = 80;

/**
 * Exact thin SVD: Householder QR, then one-sided (Hestenes) Jacobi on the square R factor. Jacobi is
 * accurate to machine precision relative to each singular value, and costs O(n³) per sweep: use it for
 * matrices up to a few hundred on the short side; `truncatedSvd` picks a subspace method above that.
 */
export function svd(a: Matrix): Svd {
  if (a.rows < a.cols) {
    const t = svd(transpose(a));
    applySignConvention(t.v, t.u);
    return { u: t.v, s: t.s, v: t.u };
  }
  const n = a.cols;
  if (n === 0) return { u: matrix(a.rows, 0), s: new Float64Array(0), v: matrix(0, 0) };
  const { q, r } = qr(a);

  // cols[j] = column j of the working matrix (starts as R), vt[j] = column j of V: both contiguous.
  const cols = transpose(r).data;
  const vt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) vt[i * n + i] = 1;
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) norms[j] = dot(cols, j * n, cols, j * n, n);

  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let qi = p + 1; qi < n; qi++) {
        const alpha = norms[p];
        const beta = norms[qi];
        if (alpha === 0 || beta === 0) continue;
        const gamma = dot(cols, p * n, cols, qi * n, n);
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(cols, p * n, qi * n, n, c, s);
        rotate(vt, p * n, qi * n, n, c, s);
        norms[p] = dot(cols, p * n, cols, p * n, n);
        norms[qi] = dot(cols, qi * n, cols, qi * n, n);
      }
    }
    if (!rotated) break;
  }

  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const s = new Float64Array(n);
  const ur = matrix(n, n);
  const v = matrix(n, n);
  const smax = Math.sqrt(norms[order[0]]);
  const filled: number[] = [];
  const zero: number[] = [];
  order.forEach((j, k) => {
    const sigma = Math.sqrt(norms[j]);
    s[k] = sigma;
    for (let i = 0; i < n; i++) v.data[i * n + k] = vt[j * n + i];
    if (sigma > smax * 1e-14 && sigma > 0) {
      for (let i = 0; i < n; i++) ur.data[i * n + k] = cols[j * n + i] / sigma;
      filled.push(k);
    } else {
      zero.push(k);
    }
  });
  completeBasis(ur, filled, zero);
  const u = matmul(q, ur);
  applySignConvention(u, v);
  return { u, s, v };
}

/** Flips (uᵢ, vᵢ) column pairs in place so the largest-magnitude entry of each uᵢ is positive. */
export function applySignConvention(u: Matrix, v: Matrix): void {
  for (let k = 0; k < u.cols; k++) {
    let best = 0;
    let bestAbs = -1;
    for (let i = 0; i < u.rows; i++) {
      const x = Math.abs(u.data[i * u.cols + k]);
      if (x > bestAbs) {
        bestAbs = x;
        best = u.data[i * u.cols + k];
      }
    }
    if (best >= 0) continue;
    for (let i = 0; i < u.rows; i++) u.data[i * u.cols + k] = -u.data[i * u.cols + k];
    for (let i = 0; i < v.rows; i++) v.data[i * v.cols + k] = -v.data[i * v.cols + k];
  }
}

function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i++) s += x[xo + i] * y[yo + i];
  return s;
}

function rotate(x: Float64Array, po: number, qo: number, len: number, c: number, s: number): void {
  for (let i = 0; i < len; i++) {
    const xp = x[po + i];
    const xq = x[qo + i];
    x[po + i] = c * xp - s * xq;
    x[qo + i] = s * xp + c * xq;
  }
}

/**
 * Columns of `u` listed in `missing` (zero singular values) get unit vectors orthogonal to the `filled`
 * ones, by Gram–Schmidt (twice, for stability) on the standard basis, so u keeps orthonormal columns.
 */
function completeBasis(u: Matrix, filled: number[], missing: number[]): void {
  const n = u.rows;
  const cols = u.cols;
  const basis = [...filled];
  let candidate = 0;
  for (const k of missing) {
    for (; candidate < n; candidate++) {
      const x = new Float64Array(n);
      x[candidate] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (const b of basis) {
          let d = 0;
          for (let i = 0; i < n; i++) d += u.data[i * cols + b] * x[i];
          for (let i = 0; i < n; i++) x[i] -= d * u.data[i * cols + b];
        }
      }
      const norm = Math.sqrt(x.reduce((acc, xi) => acc + xi * xi, 0));
      if (norm > 1e-8) {
        for (let i = 0; i < n; i++) u.data[i * cols + k] = x[i] / norm;
        basis.push(k);
        candidate++;
        break;
      }
    }
  }
}
