import { loadBlasGemm } from './blas-gemm.ts';
import { loadOrtGemm } from './ort-gemm.ts';
import type { MatMulPath, NativeGemm } from './types.ts';

export type NativeGemmPath = NativeGemm['path'];

/** Native GEMMs in order of preference: bundled MLAS needs nothing on the machine, a system BLAS does. */
export const nativeGemmOrder: NativeGemmPath[] = ['onnxruntime-mlas', 'koffi-blas'];

export const matMulPaths: MatMulPath[] = ['onnxruntime-mlas', 'koffi-blas', 'js-relayout', 'wasm-stock'];

export interface GemmProbe {
  path: NativeGemmPath;
  available: boolean;
  reason: string;
  details: Record<string, unknown>;
}

const loaded = new Map<NativeGemmPath, NativeGemm | Error>();

function attempt(path: NativeGemmPath): NativeGemm | Error {
  let result = loaded.get(path);
  if (!result) {
    try {
      result = path === 'onnxruntime-mlas' ? loadOrtGemm() : loadBlasGemm();
    } catch (error) {
      result = error instanceof Error ? error : new Error(String(error));
    }
    loaded.set(path, result);
  }
  return result;
}

/** Loads one native GEMM (cached per process); throws with the reason when it cannot load here. */
export function loadGemm(path: NativeGemmPath): NativeGemm {
  const result = attempt(path);
  if (result instanceof Error) throw new Error(`${path} is unavailable: ${result.message}`);
  return result;
}

/**
 * Tries the native GEMMs in order and stops at the first that loads (each loaded library costs memory and
 * threads); the rest are reported as not tried. `all` tries every one, for benchmarks and diagnostics.
 */
export function probeGemms(opts: { all?: boolean } = {}): GemmProbe[] {
  let found: NativeGemmPath | null = null;
  return nativeGemmOrder.map((path) => {
    if (found && !opts.all) {
      return { path, available: false, reason: `not tried: ${found} loaded first`, details: {} };
    }
    const result = attempt(path);
    if (result instanceof Error)
      return { path, available: false, reason: result.message.split('\n')[0], details: {} };
    found ??= path;
    return { path, available: true, reason: 'loaded', details: result.details };
  });
}

export function isMatMulPath(value: string): value is MatMulPath {
  return (matMulPaths as string[]).includes(value);
}
