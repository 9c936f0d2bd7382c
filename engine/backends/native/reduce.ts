import * as tf from '@tensorflow/tfjs-core';
import { cpuKernel, NATIVE_BACKEND, type NativeKernelArgs, type NativeKernelFunc } from './backend.ts';
import { library } from './library.ts';

/**
 * Float32 reductions over any contiguous run of axes (rows, columns, or a middle block), without the cpu
 * backend's transpose of the input to put the reduced axes last; accumulation in float64.
 */

type Reducer = 'sum' | 'mean' | 'max' | 'min';

interface Split {
  outer: number;
  mid: number;
  inner: number;
  outShape: number[];
}

function split(shape: number[], axes: number[], keepDims: boolean): Split | null {
  const sorted = [...axes].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1] + 1) return null;
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const size = (from: number, to: number) => tf.util.sizeFromShape(shape.slice(from, to));
  const outShape = keepDims
    ? shape.map((d, i) => (i >= first && i <= last ? 1 : d))
    : shape.filter((_, i) => i < first || i > last);
  return { outer: size(0, first), mid: size(first, last + 1), inner: size(last + 1, shape.length), outShape };
}

function reduceInto(kind: Reducer, x: Float32Array, out: Float32Array, s: Split): void {
  const { outer, mid, inner } = s;
  if (inner === 1) {
    for (let r = 0; r < outer; r++) {
      const base = r * mid;
      let acc = kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0;
      if (kind === 'sum' || kind === 'mean') for (let j = 0; j < mid; j++) acc += x[base + j];
      else if (kind === 'max')
        for (let j = 0; j < mid; j++) {
          const v = x[base + j];
          if (v > acc || Number.isNaN(v)) acc = v;
        }
      else
        for (let j = 0; j < mid; j++) {
          const v = x[base + j];
          if (v < acc || Number.isNaN(v)) acc = v;
        }
      out[r] = kind === 'mean' ? acc / mid : acc;
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let r = 0; r < outer; r++) {
    acc.fill(kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0);
    let i = r * mid * inner;
    for (let j = 0; j < mid; j++, i += inner) {
      if (kind === 'sum' || kind === 'mean') for (let k = 0; k < inner; k++) acc[k] += x[i + k];
      else if (kind === 'max')
        for (let k = 0; k < inner; k++) {
          const v = x[i + k];
          if (v > acc[k] || Number.isNaN(v)) acc[k] = v;
        }
      else
        for (let k = 0; k < inner; k++) {
          const v = x[i + k];
          if (v < acc[k] || Number.isNaN(v)) acc[k] = v;
        }
    }
    const o = r * inner;
    for (let k = 0; k < inner; k++) out[o + k] = kind === 'mean' ? acc[k] / mid : acc[k];
  }
}

function reduction(
  kernelName: string,
  kind: Reducer,
  axisAttr: 'axis' | 'reductionIndices',
): tf.KernelConfig {
  const fallback = cpuKernel(kernelName);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32' || x.shape.length === 0) return fallback(args);
    const axes = tf.util.parseAxisParam(args.attrs?.[axisAttr] as number | number[], x.shape);
    const s = axes.length === 0 ? null : split(x.shape, axes, Boolean(args.attrs?.keepDims));
    if (!s || s.mid === 0) return fallback(args);
    const out = args.backend.alloc(Float32Array, s.outer * s.inner);
    reduceInto(kind, args.backend.values(x), out, s);
    return args.backend.output(s.outShape, 'float32', out);
  };
  return { kernelName, backendName: NATIVE_BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/** Softmax over the last axis; large inputs on the native library's threaded kernel. */
function softmax(): tf.KernelConfig {
  const fallback = cpuKernel(tf.Softmax);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const logits = args.inputs.logits as tf.TensorInfo;
    const dim = Number(args.attrs?.dim ?? -1);
    const rank = logits.shape.length;
    if (logits.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return fallback(args);
    const { backend } = args;
    const size = tf.util.sizeFromShape(logits.shape);
    const cols = logits.shape[rank - 1];
    const rows = cols === 0 ? 0 : size / cols;
    const x = backend.values(logits);
    const out = backend.alloc(Float32Array, size);
    const native = library(backend, size)?.softmax;
    if (native) {
      native(x, out, rows, cols);
    } else {
      for (let r = 0; r < rows; r++) {
        const base = r * cols;
        let max = -Infinity;
        for (let j = 0; j < cols; j++) if (x[base + j] > max) max = x[base + j];
        let sum = 0;
        for (let j = 0; j < cols; j++) {
          const e = Math.exp(x[base + j] - max);
          out[base + j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = 0; j < cols; j++) out[base + j] *= inv;
      }
    }
    return backend.output(logits.shape, 'float32', out);
  };
  return {
    kernelName: tf.Softmax,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

export function reductionKernels(): tf.KernelConfig[] {
  return [
    reduction(tf.Sum, 'sum', 'axis'),
    reduction(tf.Mean, 'mean', 'axis'),
    reduction(tf.Max, 'max', 'reductionIndices'),
    reduction(tf.Min, 'min', 'axis'),
    softmax(),
  ];
}
