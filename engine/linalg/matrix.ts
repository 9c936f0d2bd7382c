import * as tf from '@tensorflow/tfjs-core';

/** A dense row-major matrix: element (i, j) is `data[i * cols + j]`. All routines compute in float64. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new Error(`matrix: invalid shape ${rows} × ${cols}`);
  }
  if (data && data.length !== rows * cols) {
    throw new Error(`matrix: ${data.length} values do not fill a ${rows} × ${cols} matrix`);
  }
  return { rows, cols, data: data ? Float64Array.from(data) : new Float64Array(rows * cols) };
}

export function identity(n: number): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function fromRows(rows: readonly (readonly number[])[]): Matrix {
  const cols = rows.length ? rows[0].length : 0;
  if (rows.some((r) => r.length !== cols)) throw new Error('fromRows: rows have different lengths');
  return matrix(rows.length, cols, rows.flat());
}

export function transpose(a: Matrix): Matrix {
  const t = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j];
  }
  return t;
}

/** a · b (i-k-j loop order: the inner loop runs over contiguous rows of b and of the result). */
export function matmul(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new Error(`matmul: ${a.rows} × ${a.cols} times ${b.rows} × ${b.cols}`);
  const c = matrix(a.rows, b.cols);
  const n = b.cols;
  for (let i = 0; i < a.rows; i++) {
    const ci = i * n;
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k];
      if (aik === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) c.data[ci + j] += aik * b.data[bk + j];
    }
  }
  return c;
}

/** The columns [start, end) of `a`. */
export function sliceCols(a: Matrix, start: number, end: number): Matrix {
  const out = matrix(a.rows, end - start);
  for (let i = 0; i < a.rows; i++) {
    out.data.set(a.data.subarray(i * a.cols + start, i * a.cols + end), i * out.cols);
  }
  return out;
}

/** The rows [start, end) of `a`. */
export function sliceRows(a: Matrix, start: number, end: number): Matrix {
  return matrix(end - start, a.cols, a.data.subarray(start * a.cols, end * a.cols));
}

/** Frobenius norm. */
export function frobenius(a: Matrix): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i] * a.data[i];
  return Math.sqrt(s);
}

/** Largest |a − b| over all elements. */
export function maxAbsDiff(a: Matrix, b: Matrix): number {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new Error(`maxAbsDiff: ${a.rows} × ${a.cols} vs ${b.rows} × ${b.cols}`);
  }
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

/** Reads a 2-D tensor into float64 (synchronously: callers hold small or already-computed tensors). */
export function fromTensor(t: tf.Tensor): Matrix {
  if (t.rank !== 2) throw new Error(`fromTensor: expected a 2-D tensor, got shape [${t.shape.join(', ')}]`);
  const [rows, cols] = t.shape as [number, number];
  return matrix(rows, cols, t.dataSync() as Float32Array);
}

/** A float32 tensor of the matrix (not kept: callers wrap it in tf.tidy or dispose it). */
export function toTensor(a: Matrix): tf.Tensor2D {
  return tf.tensor2d(Float32Array.from(a.data), [a.rows, a.cols], 'float32');
}
