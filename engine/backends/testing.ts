import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { NativeGemmPath } from './gemm.ts';
import { ensureGradients } from './gradients.ts';
import { parsePreference } from './index.ts';
import { activateNative } from './native/index.ts';
import { activateWasm } from './wasm.ts';
import { initWebGpuBackend } from './webgpu.ts';

let ready: Promise<string> | null = null;

/**
 * Selects a backend for unit tests once per process and returns its name: by default the CPU default users get,
 * `native` (typed arrays outside any wasm heap, products on the native GEMM). `STUDIO_TEST_BACKEND` forces a
 * backend or a matmul route, with the values `studio backends --backend` takes (`cpu`, `wasm`, `wasm:js-relayout`,
 * `native:koffi-blas`, `webgpu`).
 */
export function useTestBackend(): Promise<string> {
  ready ??= (async () => {
    await ensureGradients();
    const preference = parsePreference(process.env.STUDIO_TEST_BACKEND ?? 'native');
    switch (preference.backend) {
      case 'cpu':
        if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
        break;
      case 'webgpu':
        await initWebGpuBackend();
        break;
      case 'native':
        await activateNative(preference.matmul as NativeGemmPath | undefined);
        break;
      case 'cuda':
        throw new Error('STUDIO_TEST_BACKEND=cuda is not supported: the CUDA plugin is not a dependency');
      default:
        await activateWasm(preference.matmul);
    }
    await tf.ready();
    return tf.getBackend();
  })();
  return ready;
}
