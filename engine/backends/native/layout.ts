import * as tf from '@tensorflow/tfjs-core';
import {
  cpuKernel,
  NATIVE_BACKEND,
  type NativeBackend,
  type NativeKernelArgs,
  type NativeKernelFunc,
  type Values,
} from './backend.ts';

/**
 * Data movement: transposes (attention's head split and merge, matmul operands), embedding lookups and their
 * gradient. The cpu backend computes every element's coordinates (0.02 Gelem/s for the head split).
 */

function newLike(backend: NativeBackend, dtype: tf.DataType, size: number): Values | null {
  if (dtype === 'float32') return backend.alloc(Float32Array, size);
  if (dtype === 'int32') return backend.alloc(Int32Array, size);
  if (dtype === 'bool') return backend.alloc(Uint8Array, size);
  return null;
}

const SUPPORTED = new Set<tf.DataType>(['float32', 'int32', 'bool']);

/** out = x with axes permuted; the innermost output axis is walked with one stride. */
export function transposeInto(x: Values, shape: number[], perm: number[], out: Values): void {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= shape[d];
  }
  const outShape = perm.map((p) => shape[p]);
  const stride = perm.map((p) => inStrides[p]);
  const size = out.length;
  if (size === 0) return;
  const last = rank - 1;
  const n = outShape[last];
  const step = stride[last];
  if (rank === 2) {
    // blocked, so both sides stay in cache
    const [rows, cols] = outShape;
    const B = 32;
    for (let r0 = 0; r0 < rows; r0 += B)
      for (let c0 = 0; c0 < cols; c0 += B) {
        const r1 = Math.min(rows, r0 + B);
        const c1 = Math.min(cols, c0 + B);
        for (let r = r0; r < r1; r++) {
          const o = r * cols;
          for (let c = c0; c < c1; c++) out[o + c] = x[r * stride[0] + c * step];
        }
      }
    return;
  }
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  for (let o = 0; o < size; o += n) {
    if (step === 1) out.set(x.subarray(base, base + n), o);
    else for (let j = 0, i = base; j < n; j++, i += step) out[o + j] = x[i];
    // advance the outer coordinates (all but the last) like an odometer
    for (let d = last - 1; d >= 0; d--) {
      index[d]++;
      base += stride[d];
      if (index[d] < outShape[d]) break;
      base -= stride[d] * outShape[d];
      index[d] = 0;
    }
  }
}

function transpose(): tf.KernelConfig {
  const fallback = cpuKernel(tf.Transpose);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const perm = args.attrs?.perm as number[];
    const size = tf.util.sizeFromShape(x.shape);
    if (!SUPPORTED.has(x.dtype) || x.shape.length === 0) return fallback(args);
    const out = newLike(args.backend, x.dtype, size)!;
    transposeInto(args.backend.values<Values>(x), x.shape, perm, out);
    return args.backend.output(
      perm.map((p) => x.shape[p]),
      x.dtype,
      out,
    );
  };
  return {
    kernelName: tf.Transpose,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/** Row lookups `x[indices]` along axis 0 (embeddings); other axes and batch dims go to the cpu kernel. */
function gather(): tf.KernelConfig {
  const fallback = cpuKernel(tf.GatherV2);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const indices = args.inputs.indices as tf.TensorInfo;
    const axis = tf.util.parseAxisParam(Number(args.attrs?.axis ?? 0), x.shape)[0];
    if (axis !== 0 || Number(args.attrs?.batchDims ?? 0) !== 0 || indices.dtype !== 'int32')
      return fallback(args);
    const rows = x.shape[0];
    const rowSize = rows === 0 ? 0 : tf.util.sizeFromShape(x.shape) / rows;
    const ids = args.backend.values<Int32Array>(indices);
    if (!SUPPORTED.has(x.dtype)) return fallback(args);
    const out = newLike(args.backend, x.dtype, ids.length * rowSize)!;
    const xv = args.backend.values<Values>(x);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < rows))
        throw new Error(`GatherV2: the index value ${id} is not in [0, ${rows - 1}]`);
      out.set(xv.subarray(id * rowSize, (id + 1) * rowSize), i * rowSize);
    }
    return args.backend.output([...indices.shape, ...x.shape.slice(1)], x.dtype, out);
  };
  return {
    kernelName: tf.GatherV2,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/** Scatter-add of rows (the gradient of an embedding lookup); ids outside [0, numSegments) are dropped. */
function unsortedSegmentSum(): tf.KernelConfig {
  const fallback = cpuKernel(tf.UnsortedSegmentSum);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const segmentIds = args.inputs.segmentIds as tf.TensorInfo;
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32') return fallback(args);
    const numSegments = Number(args.attrs?.numSegments);
    const ids = args.backend.values<Int32Array>(segmentIds);
    const rowSize = ids.length === 0 ? 0 : tf.util.sizeFromShape(x.shape) / ids.length;
    const out = args.backend.alloc(Float32Array, numSegments * rowSize, true);
    const xv = args.backend.values(x);
    for (let i = 0; i < ids.length; i++) {
      const seg = ids[i];
      if (seg < 0 || seg >= numSegments) continue;
      const src = i * rowSize;
      const dst = seg * rowSize;
      for (let j = 0; j < rowSize; j++) out[dst + j] += xv[src + j];
    }
    return args.backend.output([numSegments, ...x.shape.slice(segmentIds.shape.length)], 'float32', out);
  };
  return {
    kernelName: tf.UnsortedSegmentSum,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/** Copies the box `begin`..`begin + size` of x (shape `shape`) into out, one contiguous run at a time. */
export function sliceInto(x: Values, shape: number[], begin: number[], size: number[], out: Values): void {
  const rank = shape.length;
  if (out.length === 0) return;
  // trailing axes taken whole merge into the innermost run
  let inner = rank - 1;
  let run = size[inner];
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner];
  }
  const strides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d] * strides[d];
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o += run) {
    out.set(x.subarray(base, base + run), o);
    for (let d = inner - 1; d >= 0; d--) {
      index[d]++;
      base += strides[d];
      if (index[d] < size[d]) break;
      base -= strides[d] * size[d];
      index[d] = 0;
    }
  }
}

function slicedCopy(backend: NativeKernelArgs['backend'], x: tf.TensorInfo, begin: number[], size: number[]) {
  const out = newLike(backend, x.dtype, tf.util.sizeFromShape(size))!;
  sliceInto(backend.values<Values>(x), x.shape, begin, size, out);
  return backend.output(size, x.dtype, out);
}

function slice(): tf.KernelConfig {
  const fallback = cpuKernel(tf.Slice);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!SUPPORTED.has(x.dtype) || x.shape.length === 0) return fallback(args);
    const [begin, size] = tf.slice_util.parseSliceParams(
      x,
      args.attrs?.begin as number | number[],
      args.attrs?.size as number | number[],
    );
    tf.slice_util.assertParamsValid(x, begin, size);
    return slicedCopy(args.backend, x, begin, size);
  };
  return {
    kernelName: tf.Slice,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

function splitV(): tf.KernelConfig {
  const fallback = cpuKernel(tf.SplitV);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!SUPPORTED.has(x.dtype) || x.shape.length === 0) return fallback(args);
    const axis = tf.util.parseAxisParam(Number(args.attrs?.axis), x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(
      x as tf.Tensor,
      args.attrs?.numOrSizeSplits as number | number[],
      axis,
    );
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      const out = slicedCopy(args.backend, x, begin, size);
      begin[axis] += s;
      return out;
    });
  };
  return {
    kernelName: tf.SplitV,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/** Concatenation along an axis: per outer index, each input's contiguous chunk in turn. */
function concat(): tf.KernelConfig {
  const fallback = cpuKernel(tf.Concat);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const first = inputs[0];
    if (
      !first ||
      first.shape.length === 0 ||
      inputs.some((t) => t.dtype !== first.dtype) ||
      !SUPPORTED.has(first.dtype)
    )
      return fallback(args);
    const axis = tf.util.parseAxisParam(Number(args.attrs?.axis), first.shape)[0];
    const outShape = tf.backend_util.computeOutShape(
      inputs.map((t) => t.shape),
      axis,
    );
    const outer = first.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const chunks = inputs.map((t) => (outer === 0 ? 0 : tf.util.sizeFromShape(t.shape) / outer));
    const rowSize = chunks.reduce((a, b) => a + b, 0);
    const out = newLike(args.backend, first.dtype, outer * rowSize)!;
    const views = inputs.map((t) => args.backend.values<Values>(t));
    for (let r = 0; r < outer; r++) {
      let o = r * rowSize;
      for (let i = 0; i < inputs.length; i++) {
        const c = chunks[i];
        out.set(views[i].subarray(r * c, (r + 1) * c), o);
        o += c;
      }
    }
    return args.backend.output(outShape, first.dtype, out);
  };
  return {
    kernelName: tf.Concat,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

/** Tiling: the innermost run is copied, then whole blocks are doubled up axis by axis from the inside out. */
function tile(): tf.KernelConfig {
  const fallback = cpuKernel(tf.Tile);
  const kernelFunc: NativeKernelFunc = (args: NativeKernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const reps = args.attrs?.reps as number[];
    if (!SUPPORTED.has(x.dtype) || x.shape.length === 0 || reps.length !== x.shape.length)
      return fallback(args);
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = newLike(args.backend, x.dtype, tf.util.sizeFromShape(outShape))!;
    if (out.length === 0) return args.backend.output(outShape, x.dtype, out);
    const xv = args.backend.values<Values>(x);
    // recursive on axis: writes the tile of x[prefix] (input offset i) at output offset o, returns its size
    const rank = x.shape.length;
    const inStrides = new Array<number>(rank);
    const outStrides = new Array<number>(rank);
    let si = 1;
    let so = 1;
    for (let d = rank - 1; d >= 0; d--) {
      inStrides[d] = si;
      outStrides[d] = so;
      si *= x.shape[d];
      so *= outShape[d];
    }
    const fill = (axis: number, i: number, o: number): void => {
      const n = x.shape[axis];
      if (axis === rank - 1) {
        out.set(xv.subarray(i, i + n), o);
      } else {
        for (let j = 0; j < n; j++) fill(axis + 1, i + j * inStrides[axis], o + j * outStrides[axis]);
      }
      const block = n * outStrides[axis];
      for (let r = 1; r < reps[axis]; r++) out.copyWithin(o + r * block, o, o + block);
    };
    fill(0, 0, 0);
    return args.backend.output(outShape, x.dtype, out);
  };
  return {
    kernelName: tf.Tile,
    backendName: NATIVE_BACKEND,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  };
}

export function layoutKernels(): tf.KernelConfig[] {
  return [transpose(), gather(), unsortedSegmentSum(), slice(), splitV(), concat(), tile()];
}
