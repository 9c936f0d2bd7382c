import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { type GemmProbe, loadGemm, type NativeGemmPath, nativeGemmOrder, probeGemms } from '../gemm.ts';
import type { NativeGemm } from '../types.ts';
import { NATIVE_BACKEND, NativeBackend } from './backend.ts';
import { elementwiseKernels } from './elementwise.ts';
import { frozenKernels } from './frozen.ts';
import { fusedKernels, installNativeFusedOps } from './fused.ts';
import { layoutKernels } from './layout.ts';
import { retainFreedMemory } from './malloc.ts';
import { matMulKernels } from './matmul.ts';
import { reductionKernels } from './reduce.ts';

export { NATIVE_BACKEND, NativeBackend } from './backend.ts';

let current: NativeGemm | null = null;
let registered = false;

/** Registers the backend (once per process): the cpu backend's kernels, then the native ones over them. */
function register(): void {
  if (registered) return;
  registered = true;
  tf.registerBackend(
    NATIVE_BACKEND,
    () => {
      if (!current) throw new Error('the native backend needs a native GEMM (activateNative loads one)');
      return new NativeBackend(current);
    },
    // never picked by tfjs on its own: selectBackend activates it
    -1,
  );
  for (const config of tf.getKernelsForBackend('cpu')) {
    tf.registerKernel({ ...config, backendName: NATIVE_BACKEND });
  }
  for (const config of [
    ...matMulKernels(),
    ...elementwiseKernels(),
    ...reductionKernels(),
    ...layoutKernels(),
    ...frozenKernels(),
    ...fusedKernels(),
  ]) {
    if (tf.getKernel(config.kernelName, NATIVE_BACKEND))
      tf.unregisterKernel(config.kernelName, NATIVE_BACKEND);
    tf.registerKernel(config);
  }
  installNativeFusedOps();
}

export interface NativeSetup {
  gemm: NativeGemm;
  /** Why each native GEMM loaded or not (empty when one was forced). */
  gemmProbes: GemmProbe[];
  /** What was done to the C allocator (malloc.ts). */
  allocator: string;
}

/**
 * Activates the native backend on the first native GEMM that loads (onnxruntime MLAS, then a system BLAS), or
 * on `force`; throws with every reason when none loads.
 */
export async function activateNative(force?: NativeGemmPath): Promise<NativeSetup> {
  const gemmProbes = force ? [] : probeGemms();
  const path = force ?? nativeGemmOrder.find((p) => gemmProbes.find((g) => g.path === p)?.available);
  if (!path) {
    throw new Error(
      `no native GEMM loads here (${gemmProbes.map((p) => `${p.path}: ${p.reason}`).join('; ')})`,
    );
  }
  const gemm = loadGemm(path);
  const previous = current;
  current = gemm;
  register();
  // a backend instance holds its GEMM: switching GEMMs (tests, benchmarks) makes a new instance
  if (previous && previous !== gemm && tf.findBackendFactory(NATIVE_BACKEND)) {
    tf.removeBackend(NATIVE_BACKEND);
    tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(current!), -1);
  }
  if (!(await tf.setBackend(NATIVE_BACKEND))) throw new Error('the native backend failed to initialise');
  return { gemm, gemmProbes, allocator: retainFreedMemory() };
}
