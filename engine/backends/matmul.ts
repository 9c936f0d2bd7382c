import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { broadcastIndices, gemmInto, type MatMulPlan, planMatMul, simpleBatch } from './gemm-plan.ts';
import { installNativeUnaryKernels } from './native-unary.ts';
import type { MatMulPath, NativeGemm } from './types.ts';
import { type KernelArgs, replaceWasmKernel } from './wasm-kernels.ts';

/**
 * `BatchMatMul` and `_FusedMatMul` for the `wasm` backend. The stock wasm kernel is fast only for a single
 * untransposed product (XNNPACK); every transposed or batched product (so every backward pass) falls back to a
 * scalar loop. These kernels route products to a native sgemm when one is loaded, or re-lay them out onto the
 * fast stock form otherwise. Kernels stay synchronous, as tfjs requires.
 */

type TensorInfo = tf.TensorInfo;
type KernelImpl = (args: KernelArgs) => TensorInfo;

interface Route {
  path: MatMulPath;
  gemm: NativeGemm | null;
  minFlops: number;
}

let route: Route = { path: 'wasm-stock', gemm: null, minFlops: 0 };
let stockBatchMatMul: KernelImpl | null = null;
let stockFusedMatMul: KernelImpl | null = null;

function kernel(name: string): KernelImpl {
  const config = tf.getKernel(name, 'wasm');
  if (!config)
    throw new Error(`the wasm backend has no ${name} kernel (is @tensorflow/tfjs-backend-wasm imported?)`);
  return config.kernelFunc as unknown as KernelImpl;
}

/** Replaces the wasm `BatchMatMul` and `_FusedMatMul` kernels with the routing ones (once per process). */
export function installMatMulKernels(): void {
  if (stockBatchMatMul) return;
  replaceWasmKernel(tf.BatchMatMul, (stock) => {
    stockBatchMatMul = stock as KernelImpl;
    return batchMatMul;
  });
  replaceWasmKernel(tf._FusedMatMul, (stock) => {
    stockFusedMatMul = stock as KernelImpl;
    return fusedMatMul;
  });
}

/**
 * Chooses the matmul route. `gemm` is required for the native paths; `minFlops` overrides the size under which a
 * native GEMM hands the product to the stock kernel (tests set 0 to exercise the native path on small shapes).
 */
export function setMatMulRoute(
  path: MatMulPath,
  gemm: NativeGemm | null = null,
  opts: { minFlops?: number } = {},
) {
  if ((path === 'onnxruntime-mlas' || path === 'koffi-blas') && (!gemm || gemm.path !== path)) {
    throw new Error(`matmul route ${path} needs its loaded GEMM`);
  }
  installMatMulKernels();
  installNativeUnaryKernels(() => route.gemm);
  route = { path, gemm, minFlops: opts.minFlops ?? gemm?.minFlops ?? 0 };
}

/**
 * Whether x·Wᵀ costs no more than W·x on the active backend: true everywhere except wasm without a native GEMM,
 * where a transposed operand is re-laid out on every call.
 */
export function transposedProductsAreNative(): boolean {
  return tf.getBackend() !== 'wasm' || route.gemm !== null;
}

export function getMatMulRoute(): { path: MatMulPath; gemm: NativeGemm | null } {
  return { path: route.path, gemm: route.gemm };
}

function nativeMatMul(
  gemm: NativeGemm,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  p: MatMulPlan,
  backend: BackendWasm,
): TensorInfo {
  const out = backend.makeOutput(p.outShape, 'float32');
  if (p.batch * p.m * p.n === 0) return out;
  // views are taken after makeOutput: an allocation may grow (and so detach) the wasm memory
  gemmInto(
    gemm,
    p,
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
    transposeA,
    transposeB,
    backend.typedArrayFromHeap(a) as Float32Array,
    backend.typedArrayFromHeap(b) as Float32Array,
    backend.typedArrayFromHeap(out) as Float32Array,
  );
  return out;
}

function transposeLast2(x: TensorInfo, backend: BackendWasm): TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return kernel(tf.Transpose)({ inputs: { x }, backend, attrs: { perm } });
}

/** Same data, another shape: the stock kernel only reads the data id, so no reshape kernel is needed. */
function view(x: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * Without a native GEMM: materialise transposes with the wasm Transpose kernel, fold the batch into rows when the
 * right operand is shared, and otherwise loop over the batch, so that every product the stock kernel sees is a
 * single untransposed one (its XNNPACK path).
 */
function relayoutMatMul(
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  p: MatMulPlan,
  backend: BackendWasm,
): TensorInfo {
  const stock = stockBatchMatMul!;
  const temps: TensorInfo[] = [];
  const at = transposeA ? transposeLast2(a, backend) : a;
  const bt = transposeB ? transposeLast2(b, backend) : b;
  if (at !== a) temps.push(at);
  if (bt !== b) temps.push(bt);
  const { m, n, k, batch, batchB } = p;
  const noTranspose = { transposeA: false, transposeB: false };
  try {
    if (batch === 1 || (batchB === 1 && p.batchA === batch)) {
      const rows = batch * m;
      const result = stock({
        inputs: { a: view(at, [1, rows, k]), b: view(bt, [1, k, n]) },
        backend,
        attrs: noTranspose,
      });
      return { dataId: result.dataId, shape: p.outShape, dtype: 'float32' };
    }
    const out = backend.makeOutput(p.outShape, 'float32');
    const ia = broadcastIndices(p.batchShape, a.shape.slice(0, -2));
    const ib = broadcastIndices(p.batchShape, b.shape.slice(0, -2));
    const aSize = m * k;
    const bSize = k * n;
    const cSize = m * n;
    const sharedB = batchB === 1 ? view(bt, [1, k, n]) : null;
    for (let i = 0; i < batch; i++) {
      const ai = backend.makeOutput([1, m, k], 'float32');
      const bi = sharedB ?? backend.makeOutput([1, k, n], 'float32');
      const atView = backend.typedArrayFromHeap(at) as Float32Array;
      (backend.typedArrayFromHeap(ai) as Float32Array).set(
        atView.subarray(ia[i] * aSize, (ia[i] + 1) * aSize),
      );
      if (!sharedB) {
        const btView = backend.typedArrayFromHeap(bt) as Float32Array;
        (backend.typedArrayFromHeap(bi) as Float32Array).set(
          btView.subarray(ib[i] * bSize, (ib[i] + 1) * bSize),
        );
      }
      const ri = stock({ inputs: { a: ai, b: bi }, backend, attrs: noTranspose });
      (backend.typedArrayFromHeap(out) as Float32Array).set(
        backend.typedArrayFromHeap(ri) as Float32Array,
        i * cSize,
      );
      backend.disposeData(ri.dataId);
      backend.disposeData(ai.dataId);
      if (!sharedB) backend.disposeData(bi.dataId);
    }
    return out;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

function batchMatMul(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const a = inputs.a as TensorInfo;
  const b = inputs.b as TensorInfo;
  const transposeA = Boolean(attrs?.transposeA);
  const transposeB = Boolean(attrs?.transposeB);
  const p = planMatMul(a, b, transposeA, transposeB, 'wasm');
  const stock = stockBatchMatMul!;
  if (route.path === 'wasm-stock') return stock(args);
  if (p.k === 0 || p.batch * p.m * p.n === 0) {
    // the stock kernel leaves an empty-inner-dimension product uninitialised
    const out = backend.makeOutput(p.outShape, 'float32');
    (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
    return out;
  }
  switch (route.path) {
    case 'js-relayout':
      if (!transposeA && !transposeB && p.batch === 1) return stock(args);
      return relayoutMatMul(a, b, transposeA, transposeB, p, backend);
    default: {
      const flops = 2 * p.batch * p.m * p.n * p.k;
      if (flops < route.minFlops && simpleBatch(p)) {
        // the stock kernel's scalar loop beats a native call's fixed overhead on tiny products
        return stock(args);
      }
      return nativeMatMul(route.gemm!, a, b, transposeA, transposeB, p, backend);
    }
  }
}

function activate(
  y: TensorInfo,
  activation: string,
  backend: BackendWasm,
  leakyreluAlpha: number,
  preluWeights: TensorInfo | undefined,
): TensorInfo {
  switch (activation) {
    case 'linear':
      return y;
    case 'relu':
      return kernel(tf.Relu)({ inputs: { x: y }, backend });
    case 'relu6':
      return kernel(tf.Relu6)({ inputs: { x: y }, backend });
    case 'elu':
      return kernel(tf.Elu)({ inputs: { x: y }, backend });
    case 'sigmoid':
      return kernel(tf.Sigmoid)({ inputs: { x: y }, backend });
    case 'leakyrelu':
      return kernel(tf.LeakyRelu)({ inputs: { x: y }, backend, attrs: { alpha: leakyreluAlpha } });
    case 'prelu':
      if (!preluWeights) throw new Error('fused matMul with prelu activation needs preluActivationWeights');
      return kernel(tf.Prelu)({ inputs: { x: y, alpha: preluWeights }, backend });
    default:
      throw new Error(`fused matMul: unsupported activation "${activation}"`);
  }
}

function fusedMatMul(args: KernelArgs): TensorInfo {
  if (route.path === 'wasm-stock') return stockFusedMatMul!(args);
  const { inputs, backend, attrs } = args;
  const { a, b, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>;
  let y = batchMatMul({
    inputs: { a: a!, b: b! },
    backend,
    attrs: { transposeA: Boolean(attrs?.transposeA), transposeB: Boolean(attrs?.transposeB) },
  });
  if (bias) {
    const z = kernel(tf.Add)({ inputs: { a: y, b: bias }, backend });
    backend.disposeData(y.dataId);
    y = z;
  }
  const activation = (attrs?.activation as string | undefined) ?? 'linear';
  const z = activate(y, activation, backend, Number(attrs?.leakyreluAlpha ?? 0.2), preluActivationWeights);
  if (z !== y) backend.disposeData(y.dataId);
  return z;
}
