import * as tf from '@tensorflow/tfjs-core';
import type { NativeGemm, NativeUnaryOp } from './types.ts';
import { replaceWasmKernel } from './wasm-kernels.ts';

/**
 * The wasm backend's Tanh, Exp, Sigmoid and Erf are scalar loops (about 30 ns an element here: a GPT-2 step
 * spent a second in the GELU's tanh and the loss's exp). When the native GEMM library also has vectorised,
 * threaded versions, tensors above a size run there; small ones stay on the stock kernel, whose per-call cost
 * is lower than a native call's.
 */
export const NATIVE_UNARY_OPS: NativeUnaryOp[] = ['Tanh', 'Exp', 'Sigmoid', 'Erf'];

/** Elements under which the stock kernel is faster than a call into the native library. */
export const NATIVE_UNARY_MIN_ELEMENTS = 1 << 14;

let installed = false;

/**
 * Replaces the wasm kernels of `NATIVE_UNARY_OPS` (once per process) with ones that ask `currentGemm()` at each
 * call, so switching the matmul route switches these too.
 */
export function installNativeUnaryKernels(currentGemm: () => NativeGemm | null): void {
  if (installed) return;
  installed = true;
  for (const op of NATIVE_UNARY_OPS) {
    replaceWasmKernel(op, (stock) => (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const unary = currentGemm()?.unary;
      const size = tf.util.sizeFromShape(x.shape);
      if (!unary || x.dtype !== 'float32' || size < NATIVE_UNARY_MIN_ELEMENTS) return stock(args);
      const out = args.backend.makeOutput(x.shape, 'float32');
      // views after makeOutput: an allocation may grow (and so detach) the wasm memory
      unary(
        op,
        args.backend.typedArrayFromHeap(x) as Float32Array,
        args.backend.typedArrayFromHeap(out) as Float32Array,
      );
      return out;
    });
  }
}
