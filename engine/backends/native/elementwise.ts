import * as tf from '@tensorflow/tfjs-core';
import type { NativeBinaryOp, NativeUnaryOp } from '../types.ts';
import { cpuKernel, NATIVE_BACKEND, type NativeKernelArgs, type NativeKernelFunc } from './backend.ts';
import { library } from './library.ts';

/**
 * Elementwise float32 kernels. The cpu backend's binary kernels index every element through its broadcast
 * coordinates (about 0.08 Gelem/s here, a fifth of a plain loop); these generate one loop per operation and
 * operand layout (same shape, scalar, or a broadcast block such as a bias row or a per-row statistic) and hand
 * every other case, and every other dtype, to the cpu kernel. Large Add, Sub, Mul and Div whose operands fit one
 * rank-3 broadcast run on the native library's threaded, vectorised kernels instead (JS loops manage 150–450 M
 * elements/s, single-threaded).
 */

type Loop = (
  a: Float32Array,
  b: Float32Array,
  o: Float32Array | Uint8Array,
  p: number,
  m: number,
  q: number,
) => void;

/** Where an operand's elements sit in the output: all of it, one value, or a block repeated over outer/inner. */
type Layout =
  | { kind: 'full' }
  | { kind: 'scalar' }
  | { kind: 'block'; outer: number; mid: number; inner: number };

function layoutOf(shape: number[], out: number[]): Layout | null {
  const rank = out.length;
  const padded = [...new Array(rank - shape.length).fill(1), ...shape];
  if (padded.every((d, i) => d === out[i])) return { kind: 'full' };
  if (padded.every((d) => d === 1)) return { kind: 'scalar' };
  let first = 0;
  while (padded[first] === 1) first++;
  let last = rank - 1;
  while (padded[last] === 1) last--;
  for (let d = first; d <= last; d++) if (padded[d] !== out[d]) return null;
  const size = (from: number, to: number) => tf.util.sizeFromShape(out.slice(from, to));
  return { kind: 'block', outer: size(0, first), mid: size(first, last + 1), inner: size(last + 1, rank) };
}

type StridedLoop = (
  a: Float32Array,
  b: Float32Array,
  o: Float32Array | Uint8Array,
  ia: number,
  ib: number,
  io: number,
  n: number,
  sa: number,
  sb: number,
) => void;

/** Per output axis, the operand's stride (0 where it is broadcast), after merging axes that walk alike. */
function broadcastPlan(aShape: number[], bShape: number[], out: number[]) {
  const rank = out.length;
  const strides = (shape: number[]) => {
    const padded = [...new Array(rank - shape.length).fill(1), ...shape];
    const st = new Array<number>(rank);
    let s = 1;
    for (let d = rank - 1; d >= 0; d--) {
      st[d] = padded[d] === 1 ? 0 : s;
      s *= padded[d];
    }
    return st;
  };
  const sa = strides(aShape);
  const sb = strides(bShape);
  const dims = [out[rank - 1]];
  const as = [sa[rank - 1]];
  const bs = [sb[rank - 1]];
  for (let d = rank - 2; d >= 0; d--) {
    const n = dims[0];
    const merges = (st: number[], inner: number) =>
      (st[d] === 0 && inner === 0) || (inner !== 0 && st[d] === inner * n);
    if (merges(sa, as[0]) && merges(sb, bs[0])) {
      dims[0] *= out[d];
    } else {
      dims.unshift(out[d]);
      as.unshift(sa[d]);
      bs.unshift(sb[d]);
    }
  }
  return { dims, as, bs };
}

/** Any broadcast: an odometer over the outer axes, one strided loop along the innermost. */
function stridedBroadcast(
  loop: StridedLoop,
  a: Float32Array,
  b: Float32Array,
  o: Float32Array | Uint8Array,
  plan: { dims: number[]; as: number[]; bs: number[] },
): void {
  const { dims, as, bs } = plan;
  const last = dims.length - 1;
  const n = dims[last];
  const index = new Array<number>(dims.length).fill(0);
  let ia = 0;
  let ib = 0;
  for (let io = 0; io < o.length; io += n) {
    loop(a, b, o, ia, ib, io, n, as[last], bs[last]);
    for (let d = last - 1; d >= 0; d--) {
      index[d]++;
      ia += as[d];
      ib += bs[d];
      if (index[d] < dims[d]) break;
      ia -= as[d] * dims[d];
      ib -= bs[d] * dims[d];
      index[d] = 0;
    }
  }
}

/** Loops for one expression over `x` (element of a) and `y` (element of b). */
function loops(expr: string): Record<'same' | 'scalarA' | 'scalarB' | 'blockA' | 'blockB', Loop> {
  const make = (body: string) => new Function('a', 'b', 'o', 'p', 'm', 'q', body) as Loop;
  const n = 'const n = p * m * q;';
  return {
    same: make(`${n} for (let i = 0; i < n; i++) { const x = a[i], y = b[i]; o[i] = ${expr}; }`),
    scalarA: make(`${n} const x = a[0]; for (let i = 0; i < n; i++) { const y = b[i]; o[i] = ${expr}; }`),
    scalarB: make(`${n} const y = b[0]; for (let i = 0; i < n; i++) { const x = a[i]; o[i] = ${expr}; }`),
    // the block operand has m elements, each repeated q times, the whole block repeated p times
    blockA: make(
      `let i = 0; if (q === 1) { for (let r = 0; r < p; r++) for (let j = 0; j < m; j++, i++) { const x = a[j], y = b[i]; o[i] = ${expr}; } return; }
       for (let r = 0; r < p; r++) for (let j = 0; j < m; j++) { const x = a[j]; for (let k = 0; k < q; k++, i++) { const y = b[i]; o[i] = ${expr}; } }`,
    ),
    blockB: make(
      `let i = 0; if (q === 1) { for (let r = 0; r < p; r++) for (let j = 0; j < m; j++, i++) { const x = a[i], y = b[j]; o[i] = ${expr}; } return; }
       for (let r = 0; r < p; r++) for (let j = 0; j < m; j++) { const y = b[j]; for (let k = 0; k < q; k++, i++) { const x = a[i]; o[i] = ${expr}; } }`,
    ),
  };
}

type Dims3 = [number, number, number];

/**
 * Both operands as rank-3 shapes for the library's broadcasting: the output seen as [outer, mid, inner] of the
 * block operand (if any), a full operand that whole shape, a block [1, mid, 1], a scalar [1, 1, 1]. Null when
 * both are blocks (their blocks need not line up).
 */
function nativeDims(la: Layout, lb: Layout, size: number): [Dims3, Dims3] | null {
  if (la.kind === 'block' && lb.kind === 'block') return null;
  const block = la.kind === 'block' ? la : lb.kind === 'block' ? lb : null;
  const full: Dims3 = block ? [block.outer, block.mid, block.inner] : [1, size, 1];
  const dimsOf = (l: Layout): Dims3 =>
    l.kind === 'full' ? full : l.kind === 'scalar' ? [1, 1, 1] : [1, l.mid, 1];
  return [dimsOf(la), dimsOf(lb)];
}

function binary(
  kernelName: string,
  expr: string,
  output: 'float32' | 'bool',
  nativeOp?: NativeBinaryOp,
): tf.KernelConfig {
  const fallback = cpuKernel(kernelName);
  const loop = loops(expr);
  const strided = new Function(
    'a',
    'b',
    'o',
    'ia',
    'ib',
    'io',
    'n',
    'sa',
    'sb',
    `for (let j = 0; j < n; j++, ia += sa, ib += sb) { const x = a[ia], y = b[ib]; o[io + j] = ${expr}; }`,
  ) as StridedLoop;
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const a = args.inputs.a as tf.TensorInfo;
    const b = args.inputs.b as tf.TensorInfo;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    const shape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const la = layoutOf(a.shape, shape);
    const lb = layoutOf(b.shape, shape);
    const { backend } = args;
    const size = tf.util.sizeFromShape(shape);
    const o = output === 'bool' ? backend.alloc(Uint8Array, size) : backend.alloc(Float32Array, size);
    const av = backend.values(a);
    const bv = backend.values(b);
    if (size === 0) return backend.output(shape, output, o);
    const native = nativeOp ? library(backend, size)?.binary : undefined;
    const dims = native && la && lb ? nativeDims(la, lb, size) : null;
    if (native && dims) {
      native(nativeOp!, av, dims[0], bv, dims[1], o as Float32Array);
      return backend.output(shape, output, o);
    }
    if (!la || !lb || (la.kind !== 'full' && lb.kind !== 'full'))
      stridedBroadcast(strided, av, bv, o, broadcastPlan(a.shape, b.shape, shape));
    else if (la.kind === 'full' && lb.kind === 'full') loop.same(av, bv, o, size, 1, 1);
    else if (lb.kind === 'scalar') loop.scalarB(av, bv, o, size, 1, 1);
    else if (la.kind === 'scalar') loop.scalarA(av, bv, o, size, 1, 1);
    else if (lb.kind === 'block') loop.blockB(av, bv, o, lb.outer, lb.mid, lb.inner);
    else if (la.kind === 'block') loop.blockA(av, bv, o, la.outer, la.mid, la.inner);
    return backend.output(shape, output, o);
  };
  return { kernelName, backendName: NATIVE_BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

function unary(kernelName: string, expr: string | null, nativeOp?: NativeUnaryOp): tf.KernelConfig {
  const fallback = cpuKernel(kernelName);
  const loop = expr
    ? (new Function('x', 'o', 'n', `for (let i = 0; i < n; i++) { const v = x[i]; o[i] = ${expr}; }`) as (
        x: Float32Array,
        o: Float32Array,
        n: number,
      ) => void)
    : null;
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return fallback(args);
    const { backend } = args;
    const size = tf.util.sizeFromShape(x.shape);
    const native = nativeOp ? library(backend, size)?.unary : undefined;
    if (!native && !loop) return fallback(args);
    const o = backend.alloc(Float32Array, size);
    if (native) native(nativeOp!, backend.values(x), o);
    else loop!(backend.values(x), o, size);
    return backend.output(x.shape, 'float32', o);
  };
  return { kernelName, backendName: NATIVE_BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/**
 * int32/bool → float32 into a Float32Array: the cpu kernel keeps the Int32Array under the float32 dtype (no
 * precision is lost), which native code reading float32 pointers (onnxruntime, BLAS) refuses or misreads.
 */
function cast(): tf.KernelConfig {
  const fallback = cpuKernel(tf.Cast);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const dtype = (args.attrs as unknown as { dtype: tf.DataType }).dtype;
    if (dtype !== 'float32' || (x.dtype !== 'int32' && x.dtype !== 'bool')) return fallback(args);
    const { backend } = args;
    const values = backend.values<Int32Array | Uint8Array>(x);
    const o = backend.alloc(Float32Array, values.length);
    o.set(values);
    return backend.output(x.shape, 'float32', o);
  };
  return {
    kernelName: tf.Cast,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/**
 * Zeros of a float32 or int32 tensor's shape from the buffer pool: the cpu kernel took 0.6 ms for 49 K values,
 * and checkpointed blocks make one per LoRA parameter a step (about 0.2 s a step on Llama-3.2-3B).
 */
function zerosLike(): tf.KernelConfig {
  const fallback = cpuKernel(tf.ZerosLike);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype === 'float32')
      return args.backend.output(x.shape, 'float32', args.backend.alloc(Float32Array, size, true));
    if (x.dtype === 'int32')
      return args.backend.output(x.shape, 'int32', args.backend.alloc(Int32Array, size, true));
    return fallback(args);
  };
  return {
    kernelName: tf.ZerosLike,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

export function elementwiseKernels(): tf.KernelConfig[] {
  return [
    cast(),
    zerosLike(),
    binary(tf.Add, 'x + y', 'float32', 'Add'),
    binary(tf.Sub, 'x - y', 'float32', 'Sub'),
    binary(tf.Multiply, 'x * y', 'float32', 'Mul'),
    binary(tf.RealDiv, 'x / y', 'float32', 'Div'),
    binary(tf.Maximum, 'Math.max(x, y)', 'float32'),
    binary(tf.Minimum, 'Math.min(x, y)', 'float32'),
    binary(tf.SquaredDifference, '(x - y) * (x - y)', 'float32'),
    binary(tf.Greater, 'x > y ? 1 : 0', 'bool'),
    binary(tf.GreaterEqual, 'x >= y ? 1 : 0', 'bool'),
    binary(tf.Less, 'x < y ? 1 : 0', 'bool'),
    binary(tf.LessEqual, 'x <= y ? 1 : 0', 'bool'),
    binary(tf.Equal, 'x === y ? 1 : 0', 'bool'),
    binary(tf.NotEqual, 'x !== y ? 1 : 0', 'bool'),
    unary(tf.Neg, '-v'),
    unary(tf.Square, 'v * v'),
    unary(tf.Sqrt, 'Math.sqrt(v)'),
    unary(tf.Rsqrt, '1 / Math.sqrt(v)'),
    unary(tf.Reciprocal, '1 / v'),
    unary(tf.Abs, 'Math.abs(v)'),
    unary(tf.Relu, 'v < 0 ? 0 : v'),
    unary(tf.Sin, 'Math.sin(v)'),
    unary(tf.Cos, 'Math.cos(v)'),
    unary(tf.Log, 'Math.log(v)'),
    unary(tf.Exp, 'Math.exp(v)', 'Exp'),
    unary(tf.Tanh, 'Math.tanh(v)', 'Tanh'),
    unary(tf.Sigmoid, '1 / (1 + Math.exp(-v))', 'Sigmoid'),
    // no JS erf: small tensors take the cpu kernel's approximation
    unary(tf.Erf, null, 'Erf'),
  ];
}
