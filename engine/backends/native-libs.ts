import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';

/** Native libraries loaded at run time (onnxruntime, a system BLAS, libc, the bf16 kernel): what they share. */

const require = createRequire(import.meta.url);

export interface KoffiLib {
  func(definition: string): (...args: unknown[]) => unknown;
  unload(): void;
}

export interface Koffi {
  load(path: string): KoffiLib;
  version?: string;
}

/** koffi, the FFI every shared library but onnxruntime's is called through. */
export function koffi(): Koffi {
  return require('koffi') as Koffi;
}

/** Threads a native library's kernels use unless told otherwise: the machine's parallelism, at most 8. */
export function nativeThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}
