import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { mulberry32 } from '../random.ts';

/**
 * Helpers for kernel-parity tests: deterministic data, results computed on the tfjs `cpu` backend, and an
 * independent float64 matmul for the broadcasting cases the cpu kernel gets wrong.
 */

/** Deterministic uniform values in [-1, 1). */
export function randomValues(size: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: size }, () => random() * 2 - 1);
}

/** Runs `fn` with `cpu` as the active backend and returns its plain-array results. */
export async function onCpu<T>(fn: () => T): Promise<T> {
  const previous = tf.getBackend();
  const cpu = tf.engine().findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  // silences the cpu backend's one-time "install tfjs-node" banner
  if (cpu) cpu.firstUse = false;
  await tf.setBackend('cpu');
  try {
    return fn();
  } finally {
    await tf.setBackend(previous);
  }
}

/** `op(a)·op(b)` with numpy batch broadcasting, accumulated in float64. Returns the values and the shape. */
export function referenceMatMul(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  transposeA: boolean,
  transposeB: boolean,
): { values: Float64Array; shape: number[] } {
  const ra = aShape.length;
  const rb = bShape.length;
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const k = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pa = [...new Array(rank - aBatch.length).fill(1), ...aBatch];
  const pb = [...new Array(rank - bBatch.length).fill(1), ...bBatch];
  const batchShape = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = tf.util.sizeFromShape(batchShape);
  const out = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    let rest = bi;
    let ia = 0;
    let ib = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % batchShape[d];
      rest = Math.floor(rest / batchShape[d]);
      if (pa[d] !== 1) ia += c * sa;
      if (pb[d] !== 1) ib += c * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    const ao = ia * m * k;
    const bo = ib * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) {
          const av = transposeA ? a[ao + p * m + i] : a[ao + i * k + p];
          const bv = transposeB ? b[bo + j * k + p] : b[bo + p * n + j];
          acc += av * bv;
        }
        out[(bi * m + i) * n + j] = acc;
      }
    }
  }
  return { values: out, shape: [...batchShape, m, n] };
}

/** Largest absolute difference, scaled by max(1, |expected|) so large accumulations are judged relatively. */
export function maxRelativeDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  }
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}

/** Largest absolute difference over the largest |expected|: the relative error of half-precision results. */
export function maxScaledDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  }
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return worst / Math.max(scale, Number.MIN_VALUE);
}

/** `x` rounded to the nearest IEEE half-precision value (ties to even), as float32 values. */
export function roundToHalf(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const a = Math.abs(v);
    if (!Number.isFinite(v) || a === 0) {
      out[i] = v;
      continue;
    }
    if (a >= 65520) {
      out[i] = Math.sign(v) * Number.POSITIVE_INFINITY;
      continue;
    }
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    if (2 ** (e + 1) <= a) e++;
    // below 2^-14 half precision is subnormal: a fixed step of 2^-24
    const step = 2 ** (Math.max(e, -14) - 10);
    const q = a / step;
    const f = Math.floor(q);
    const r = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
    out[i] = Math.sign(v) * r * step;
  }
  return out;
}

/** Runs `fn` on the active backend and on cpu; returns each output's largest relative difference. */
export async function compareWithCpu(fn: () => tf.Tensor | tf.Tensor[]): Promise<number[]> {
  const run = async () => {
    const out = tf.tidy(fn);
    const list = Array.isArray(out) ? out : [out];
    const values = await Promise.all(list.map((t) => t.data()));
    tf.dispose(list);
    return values;
  };
  const expected = await await onCpu(run);
  const actual = await run();
  return actual.map((a, i) => maxRelativeDiff(a, expected[i]));
}
