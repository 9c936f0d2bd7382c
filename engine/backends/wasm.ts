import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { type GemmProbe, loadGemm, nativeGemmOrder, probeGemms } from './gemm.ts';
import { getMatMulRoute, setMatMulRoute } from './matmul.ts';
import type { MatMulPath, NativeGemm } from './types.ts';
import { installMissingWasmKernels } from './wasm-kernels.ts';

export interface WasmSetup {
  matmul: MatMulPath;
  gemm: NativeGemm | null;
  /** Why each native GEMM loaded or not (empty when a route was forced). */
  gemmProbes: GemmProbe[];
  simd: boolean;
}

/** Registers and initialises tfjs-backend-wasm (single-threaded: tfjs disables wasm threads in Node). */
export async function initWasmBackend(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  // the cpu backend stays registered for the few kernels wasm lacks
  await import('@tensorflow/tfjs-backend-cpu');
  installMissingWasmKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs-backend-wasm failed to initialise');
}

/**
 * Selects wasm with the fastest matmul route that loads: onnxruntime MLAS, then a system BLAS through koffi,
 * then the pure-JS re-layout. `force` picks one route and throws when it cannot load.
 */
export async function activateWasm(force?: MatMulPath): Promise<WasmSetup> {
  await initWasmBackend();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  if (force) {
    const gemm = force === 'onnxruntime-mlas' || force === 'koffi-blas' ? loadGemm(force) : null;
    setMatMulRoute(force, gemm);
    return { matmul: force, gemm, gemmProbes: [], simd };
  }
  const gemmProbes = probeGemms();
  const first = nativeGemmOrder.find((path) => gemmProbes.find((p) => p.path === path)?.available);
  if (first) {
    const gemm = loadGemm(first);
    setMatMulRoute(first, gemm);
  } else {
    setMatMulRoute('js-relayout');
  }
  const { path, gemm } = getMatMulRoute();
  return { matmul: path, gemm, gemmProbes, simd };
}

/**
 * A float32 tensor whose storage is allocated in the wasm heap but not written, with a view onto that
 * storage, so a loader can stream weights straight into it; null on any other backend. Untouched pages
 * cost no memory until written. `view()` must be taken again after any await: a heap that grows detaches it.
 */
export function uninitializedWasmTensor(
  shape: number[],
): { tensor: tf.Tensor; view: () => Float32Array } | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as BackendWasm;
  const info = backend.makeOutput(shape, 'float32');
  const tensor = tf.engine().makeTensorFromTensorInfo(info);
  return { tensor, view: () => backend.typedArrayFromHeap(info) as Float32Array };
}
