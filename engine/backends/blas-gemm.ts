import { type KoffiLib, koffi, nativeThreads } from './native-libs.ts';
import type { NativeGemm } from './types.ts';

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

/** Shared libraries tried in order; `STUDIO_BLAS_LIB` (a path or soname) comes first when set. */
export function blasCandidates(platform: NodeJS.Platform = process.platform): string[] {
  switch (platform) {
    case 'darwin':
      return ['/System/Library/Frameworks/Accelerate.framework/Accelerate', 'libopenblas.dylib'];
    case 'win32':
      return ['libopenblas.dll', 'openblas.dll', 'mkl_rt.2.dll'];
    default:
      return ['libopenblas.so.0', 'libopenblas.so', 'libmkl_rt.so.2', 'libblis.so.4', 'libblas.so.3'];
  }
}

function tryFunc(lib: KoffiLib, definition: string): ((...args: unknown[]) => unknown) | null {
  try {
    return lib.func(definition);
  } catch {
    return null;
  }
}

export interface BlasGemmOptions {
  /** BLAS threads (OpenBLAS/MKL); defaults to the machine's parallelism, at most 8. */
  threads?: number;
  /** Libraries to try instead of the platform list. */
  libraries?: string[];
}

/**
 * Loads `cblas_sgemm` from a system BLAS through koffi. Only optimized implementations are accepted
 * (OpenBLAS, MKL, BLIS, Accelerate, or whatever `STUDIO_BLAS_LIB` names): the netlib reference BLAS is slower
 * than the pure-JS route. Throws with every library tried and why it was refused.
 */
export function loadBlasGemm(options: BlasGemmOptions = {}): NativeGemm {
  const ffi = koffi();
  const explicit = process.env.STUDIO_BLAS_LIB;
  const libraries = options.libraries ?? [...(explicit ? [explicit] : []), ...blasCandidates()];
  const threads = options.threads ?? nativeThreads();
  const refusals: string[] = [];
  for (const name of libraries) {
    let lib: KoffiLib;
    try {
      lib = ffi.load(name);
    } catch (error) {
      refusals.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
      continue;
    }
    const sgemmFn = tryFunc(
      lib,
      'void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)',
    );
    if (!sgemmFn) {
      refusals.push(`${name}: no cblas_sgemm symbol`);
      lib.unload();
      continue;
    }
    const openblasConfig = tryFunc(lib, 'const char *openblas_get_config()');
    const openblasThreads = tryFunc(lib, 'void openblas_set_num_threads(int)');
    const mklThreads = tryFunc(lib, 'void MKL_Set_Num_Threads(int)');
    const blis = tryFunc(lib, 'const char *bli_info_get_version_str()');
    let implementation: string;
    if (openblasConfig) implementation = `OpenBLAS (${String(openblasConfig())})`;
    else if (mklThreads) implementation = 'Intel MKL';
    else if (blis) implementation = `BLIS ${String(blis())}`;
    else if (name.includes('Accelerate')) implementation = 'Apple Accelerate';
    else if (name === explicit) implementation = 'unidentified BLAS named by STUDIO_BLAS_LIB';
    else {
      refusals.push(`${name}: not an optimized BLAS (reference implementation is slower than the JS route)`);
      lib.unload();
      continue;
    }
    openblasThreads?.(threads);
    mklThreads?.(threads);
    const sgemm: NativeGemm['sgemm'] = (transA, transB, m, n, k, a, b, c) => {
      sgemmFn(
        CBLAS_ROW_MAJOR,
        transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
        transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
        m,
        n,
        k,
        1,
        a,
        transA ? m : k,
        b,
        transB ? k : n,
        0,
        c,
        n,
      );
    };
    const gemm: NativeGemm = {
      path: 'koffi-blas',
      details: {
        library: name,
        implementation,
        threads,
        koffi: ffi.version ?? 'unknown',
        refused: refusals,
      },
      minFlops: 0,
      sgemm,
      sgemmBatched(transA, transB, batch, batchA, batchB, m, n, k, a, b, c) {
        const aSize = m * k;
        const bSize = k * n;
        const cSize = m * n;
        for (let i = 0; i < batch; i++) {
          const ai = batchA === 1 ? 0 : i * aSize;
          const bi = batchB === 1 ? 0 : i * bSize;
          sgemm(
            transA,
            transB,
            m,
            n,
            k,
            a.subarray(ai, ai + aSize),
            b.subarray(bi, bi + bSize),
            c.subarray(i * cSize, (i + 1) * cSize),
          );
        }
      },
    };
    const probe = new Float32Array([1, 2, 3, 4, 5, 6]);
    const out = new Float32Array(4);
    gemm.sgemm(false, true, 2, 2, 3, probe, probe, out);
    if (out[0] !== 14 || out[1] !== 32 || out[3] !== 77) {
      refusals.push(`${name}: cblas_sgemm probe returned ${Array.from(out).join(', ')}`);
      lib.unload();
      continue;
    }
    return gemm;
  }
  throw new Error(`no usable BLAS: ${refusals.join('; ')}`);
}
