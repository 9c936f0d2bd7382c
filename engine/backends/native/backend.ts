import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeGemm } from '../types.ts';

/** The name the native CPU backend registers under with tfjs. */
export const NATIVE_BACKEND = 'native';

export type Values = Float32Array | Int32Array | Uint8Array;

/**
 * The studio's CPU backend: every tensor is an ordinary typed array (so no 4 GiB wasm heap bounds a model), the
 * products run on a native GEMM (onnxruntime's MLAS or a system BLAS) directly on those arrays, and the kernels a
 * training step spends its time in are replaced by fast loops. Storage and every other kernel are tfjs's `cpu`
 * backend's.
 */
export class NativeBackend extends MathBackendCPU {
  constructor(readonly gemm: NativeGemm) {
    super();
    // the cpu backend's one-time "install tfjs-node" banner is about a backend we deliberately don't use
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** The stored values of a tensor, without a copy (kernels must not write into inputs). */
  values<T extends Values = Float32Array>(info: tf.TensorInfo): T {
    return this.data.get(info.dataId)!.values as T;
  }

  /** A new tensor holding `values` (taken over, not copied). */
  output(shape: number[], dtype: tf.DataType, values: Values): tf.TensorInfo {
    return this.makeTensorInfo(shape, dtype, values);
  }

  override floatPrecision(): 32 {
    return 32;
  }
}

export type NativeKernelArgs = {
  inputs: tf.NamedTensorInfoMap;
  backend: NativeBackend;
  attrs?: tf.NamedAttrMap;
};
export type NativeKernelFunc = (args: NativeKernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** The `cpu` backend's kernel of that name, to hand cases the fast paths don't cover back to. */
export function cpuKernel(name: string): NativeKernelFunc {
  const config = tf.getKernel(name, 'cpu');
  if (!config)
    throw new Error(`the cpu backend has no ${name} kernel (is @tensorflow/tfjs-backend-cpu imported?)`);
  return config.kernelFunc as unknown as NativeKernelFunc;
}
