import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Kernels tfjs-backend-wasm 4.22 lacks but model code reaches: `UnsortedSegmentSum` is the gradient of `gather`
 * (embeddings), the others appear in einsum-based or convolutional code. Without them the wasm backend throws
 * where the cpu backend works.
 */

export type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs?: tf.NamedAttrMap };
export type WasmKernelFunc = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/**
 * Replaces the wasm backend's `name` kernel with `make(stock)`, which may hand work back to the stock function.
 * The stock setup function stays registered: it binds the C++ entry points if the backend initialises later.
 */
export function replaceWasmKernel(name: string, make: (stock: WasmKernelFunc) => WasmKernelFunc): void {
  const stock = tf.getKernel(name, 'wasm');
  if (!stock)
    throw new Error(`the wasm backend has no ${name} kernel (is @tensorflow/tfjs-backend-wasm imported?)`);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: make(stock.kernelFunc as unknown as WasmKernelFunc) as unknown as tf.KernelFunc,
  });
}

/** Scatter-add of rows: out[segmentIds[i]] += x[i]; ids outside [0, numSegments) are dropped, as in TensorFlow. */
function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const ids = inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number(attrs?.numSegments);
  const rows = tf.util.sizeFromShape(ids.shape);
  const rowSize = rows === 0 ? 0 : tf.util.sizeFromShape(x.shape) / rows;
  const outShape = [numSegments, ...x.shape.slice(ids.shape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  const o = backend.typedArrayFromHeap(out);
  o.fill(0);
  const xv = backend.typedArrayFromHeap(x);
  const iv = backend.typedArrayFromHeap(ids);
  for (let i = 0; i < rows; i++) {
    const seg = iv[i];
    if (seg < 0 || seg >= numSegments) continue;
    const src = i * rowSize;
    const dst = seg * rowSize;
    for (let j = 0; j < rowSize; j++) o[dst + j] += xv[src + j];
  }
  return out;
}

/** Runs the cpu backend's kernel on copies of the inputs; used for rare kernels where speed does not matter. */
function viaCpu(kernelName: string) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const cpu = tf.engine().findBackend('cpu');
    const config = tf.getKernel(kernelName, 'cpu');
    if (!cpu || !config)
      throw new Error(`${kernelName} on wasm needs the cpu backend (@tensorflow/tfjs-backend-cpu)`);
    const copy = (info: tf.TensorInfo): tf.TensorInfo => {
      const values = backend.readSync(info.dataId) as tf.backend_util.BackendValues;
      return { dataId: cpu.write(values, info.shape, info.dtype), shape: info.shape, dtype: info.dtype };
    };
    // einsum passes its operands as an array, other kernels as a named map
    const cpuInputs = (
      Array.isArray(inputs)
        ? inputs.map(copy)
        : Object.fromEntries(Object.entries(inputs).flatMap(([k, v]) => (v ? [[k, copy(v)]] : [])))
    ) as tf.NamedTensorInfoMap;
    const result = config.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs }) as tf.TensorInfo;
    const values = cpu.readSync(result.dataId) as tf.backend_util.BackendValues;
    const out = backend.makeOutput(result.shape, result.dtype, undefined, values);
    cpu.disposeData(result.dataId);
    for (const info of Object.values(cpuInputs)) if (info) cpu.disposeData(info.dataId);
    return out;
  };
}

/**
 * Identity that shares the input's buffer (as the cpu backend does) instead of copying it. The engine clones
 * every tensor a gradient saves through Identity, so the copying kernel duplicated each saved activation and
 * frozen weight (≈ 600 MB for GPT-2 small per step); tensors are immutable, so sharing is safe.
 */
function sharedIdentity({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Copies the block `begin`/`size` of a row-major array of shape `shape` into `out`, a contiguous row (last
 * axis) at a time.
 */
function copyBlock(
  xv: tf.TypedArray,
  shape: number[],
  begin: number[],
  size: number[],
  out: tf.TypedArray,
): void {
  const rank = shape.length;
  if (size.some((d) => d === 0)) return;
  const strides = tf.util.computeStrides(shape);
  const rowLength = size[rank - 1];
  const rows = tf.util.sizeFromShape(size) / rowLength;
  const index = new Array<number>(rank - 1).fill(0);
  for (let row = 0, o = 0; row < rows; row++, o += rowLength) {
    let offset = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) offset += (begin[d] + index[d]) * strides[d];
    out.set(xv.subarray(offset, offset + rowLength), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
}

/**
 * Slice reading the input in place: the stock wasm kernel first copies the whole input out of the heap
 * (`readSync`), which made splitting GPT-2's fused q/k/v projection cost 9 ms a layer.
 */
function sliceInPlace(
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
  backend: BackendWasm,
): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  copyBlock(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
  return out;
}

function slice({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs?.begin as number | number[],
    attrs?.size as number | number[],
  );
  return sliceInPlace(x, begin, size, backend);
}

function splitV({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const axis = tf.util.parseAxisParam(attrs?.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.Tensor,
    attrs?.numOrSizeSplits as number | number[],
    axis,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const out = sliceInPlace(x, begin, size, backend);
    begin[axis] += s;
    return out;
  });
}

let installed = false;

/** Registers the missing kernels on `wasm` (once per process; kernels the backend already has are left alone). */
export function installMissingWasmKernels(): void {
  if (installed) return;
  installed = true;
  const kernels: [string, (args: KernelArgs) => tf.TensorInfo][] = [
    [tf.UnsortedSegmentSum, unsortedSegmentSum],
    ...[
      tf.Einsum,
      tf.Conv2DBackpropFilter,
      tf.DepthwiseConv2dNativeBackpropFilter,
      tf.DepthwiseConv2dNativeBackpropInput,
    ].map((name): [string, (args: KernelArgs) => tf.TensorInfo] => [name, viaCpu(name)]),
  ];
  const replacements: [string, WasmKernelFunc][] = [
    [tf.Identity, sharedIdentity],
    [tf.Slice, slice],
    [tf.SplitV, splitV],
  ];
  for (const [kernelName, kernelFunc] of replacements) {
    // string tensors live outside the heap: the stock kernels handle them
    replaceWasmKernel(
      kernelName,
      (stock) => (args) =>
        (args.inputs.x as tf.TensorInfo).dtype === 'string' ? stock(args) : kernelFunc(args),
    );
  }
  for (const [kernelName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, 'wasm')) continue;
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    });
  }
}
