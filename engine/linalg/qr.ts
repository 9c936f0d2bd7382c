import { type Matrix, matrix } from './matrix.ts';

/**
 * Thin QR by Householder reflections: a (m × n) = q (m × k) · r (k × n), k = min(m, n), qᵀq = I, r upper
 * triangular. Sign convention: diag(r) ≥ 0, which makes the factorisation unique for full-rank `a` (LAPACK
 * and numpy leave the signs free, so compare after flipping them the same way).
 */
export function qr(a: Matrix): { q: Matrix; r: Matrix } {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  const w = Float64Array.from(a.data);
  const reflectors: (Float64Array | null)[] = [];

  for (let j = 0; j < k; j++) {
    let norm = 0;
    for (let i = j; i < m; i++) norm += w[i * n + j] * w[i * n + j];
    norm = Math.sqrt(norm);
    if (norm === 0) {
      reflectors.push(null);
      continue;
    }
    // alpha takes the opposite sign of the pivot so v = x − alpha·e₁ never cancels.
    const alpha = w[j * n + j] > 0 ? -norm : norm;
    const v = new Float64Array(m - j);
    for (let i = j; i < m; i++) v[i - j] = w[i * n + j];
    v[0] -= alpha;
    let vnorm = 0;
    for (let i = 0; i < v.length; i++) vnorm += v[i] * v[i];
    vnorm = Math.sqrt(vnorm);
    if (vnorm === 0) {
      reflectors.push(null);
      continue;
    }
    for (let i = 0; i < v.length; i++) v[i] /= vnorm;
    applyReflector(w, n, j, v, j, n);
    reflectors.push(v);
  }

  const q = matrix(m, k);
  for (let i = 0; i < k; i++) q.data[i * k + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = reflectors[j];
    if (v) applyReflector(q.data, k, j, v, 0, k);
  }

  const r = matrix(k, n);
  for (let i = 0; i < k; i++) {
    for (let j = i; j < n; j++) r.data[i * n + j] = w[i * n + j];
  }
  for (let i = 0; i < k; i++) {
    if (r.data[i * n + i] >= 0) continue;
    for (let j = i; j < n; j++) r.data[i * n + j] = -r.data[i * n + j];
    for (let row = 0; row < m; row++) q.data[row * k + i] = -q.data[row * k + i];
  }
  return { q, r };
}

/** X[start:, c0:c1] −= 2·v·(vᵀ X[start:, c0:c1]) on a row-major buffer with `stride` columns. */
function applyReflector(
  x: Float64Array,
  stride: number,
  start: number,
  v: Float64Array,
  c0: number,
  c1: number,
) {
  const dots = new Float64Array(c1 - c0);
  for (let i = 0; i < v.length; i++) {
    const vi = v[i];
    if (vi === 0) continue;
    const row = (start + i) * stride;
    for (let c = c0; c < c1; c++) dots[c - c0] += vi * x[row + c];
  }
  for (let i = 0; i < v.length; i++) {
    const vi2 = 2 * v[i];
    if (vi2 === 0) continue;
    const row = (start + i) * stride;
    for (let c = c0; c < c1; c++) x[row + c] -= vi2 * dots[c - c0];
  }
}

/** An orthonormal basis of the column space of `a` (the q of its thin QR). */
export function orthonormalize(a: Matrix): Matrix {
  return qr(a).q;
}
