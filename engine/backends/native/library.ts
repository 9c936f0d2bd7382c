import type { NativeGemm, NativeUnaryOp } from '../types.ts';
import type { NativeBackend } from './backend.ts';
import { cpuOps } from './cpu-ops.ts';

/**
 * The native library's row and elementwise functions as the native kernels call them: on the compiled CPU
 * kernels (cpu-ops.ts), else on the GEMM library when it has the function (onnxruntime does, a system BLAS has
 * none), when the array is large enough to pay for the call; else in JS loops.
 */

/** Elements from which a call into a native library's vectorised, threaded kernel beats a JS loop. */
export const NATIVE_UNARY_MIN_ELEMENTS = 1 << 14;

/** Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), tfjs's own erf. */
function erf(x: number): number {
  const v = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * v);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-v * v);
  return x < 0 ? -y : y;
}

const JS_UNARY: Record<NativeUnaryOp, (x: number) => number> = {
  Exp: Math.exp,
  Tanh: Math.tanh,
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  Erf: erf,
};

/**
 * Sizes in elements: from which the GEMM library's functions run instead of JS loops, the token NLL's
 * scratch (rows per pass), and the score elements of the attention groups computed at once (which bound the
 * forward and backward scratch whatever the sequence length). Tests change them to exercise both routes and the
 * chunking.
 */
export const fusedLimits = {
  nativeMinElements: NATIVE_UNARY_MIN_ELEMENTS,
  nllScratch: 1 << 20,
  attentionScratch: 1 << 22,
};

/** What the kernels call through `library`: the GEMM library's functions, all of which the compiled kernels have. */
export type NativeElementwise = Pick<NativeGemm, 'unary' | 'binary' | 'softmax' | 'logSoftmax'>;

/** The native library's functions when it has them and `elements` are enough to pay for the call. */
export function library(backend: NativeBackend, elements: number): NativeElementwise | null {
  // a call into the compiled kernels costs about a microsecond: they take arrays of every size
  return cpuOps() ?? (elements >= fusedLimits.nativeMinElements ? backend.gemm : null);
}

/** y = f(x) on the native library when it has the function (x and y may be the same array), else in JS. */
export function unary(backend: NativeBackend, op: NativeUnaryOp, x: Float32Array, y: Float32Array): void {
  const native = library(backend, x.length)?.unary;
  if (native) {
    native(op, x, y);
    return;
  }
  const f = JS_UNARY[op];
  for (let i = 0; i < x.length; i++) y[i] = f(x[i]);
}

/**
 * Softmax of each row of x into y (which may be x), on the library's threaded one or in max, exp and sum passes;
 * with `logSumExp`, each row's log-sum-exp is written there (log-softmax = x − lse without underflow).
 */
export function softmaxRows(
  backend: NativeBackend,
  x: Float32Array,
  y: Float32Array,
  rows: number,
  cols: number,
  logSumExp?: Float32Array,
): void {
  const compiled = cpuOps();
  if (compiled) {
    compiled.softmax(x, y, rows, cols, logSumExp ?? null);
    return;
  }
  const native = logSumExp ? null : library(backend, x.length)?.softmax;
  if (native) {
    native(x, y, rows, cols);
    return;
  }
  const maxes = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > max) max = x[o + j];
    for (let j = 0; j < cols; j++) y[o + j] = x[o + j] - max;
    maxes[r] = max;
  }
  unary(backend, 'Exp', y, y);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += y[o + j];
    const inv = 1 / sum;
    for (let j = 0; j < cols; j++) y[o + j] *= inv;
    if (logSumExp) logSumExp[r] = maxes[r] + Math.log(sum);
  }
}

/** y ∘= b in place over [rows, cols], b one value per row or per column: on the library when it has it. */
export function broadcastRows(
  backend: NativeBackend,
  op: 'Add' | 'Mul',
  y: Float32Array,
  b: Float32Array,
  rows: number,
  cols: number,
  perRow: boolean,
): void {
  const native = library(backend, y.length)?.binary;
  if (native) {
    native(op, y, [1, rows, cols], b, perRow ? [1, rows, 1] : [1, 1, cols], y);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (perRow) {
      const v = b[r];
      if (op === 'Mul') for (let j = 0; j < cols; j++) y[o + j] *= v;
      else for (let j = 0; j < cols; j++) y[o + j] += v;
    } else if (op === 'Mul') for (let j = 0; j < cols; j++) y[o + j] *= b[j];
    else for (let j = 0; j < cols; j++) y[o + j] += b[j];
  }
}

/** y += part (equal lengths), on the library when it has it. */
export function accumulate(backend: NativeBackend, y: Float32Array, part: Float32Array): void {
  const native = library(backend, y.length)?.binary;
  if (native) native('Add', y, [1, y.length, 1], part, [1, y.length, 1], y);
  else for (let i = 0; i < y.length; i++) y[i] += part[i];
}
