import { readFileSync } from 'node:fs';
import { outOfMemoryAdvice, StudioError } from '../../common/errors.ts';
import { formatBytes } from '../../io/bytes.ts';
import { type KoffiLib, koffi, nativeThreads } from '../native-libs.ts';
import { compileNative, kernelSource, probedOnce } from './compile.ts';

/**
 * The AVX512-BF16 product of float32 rows with a bf16 frozen weight (cc/bf16-gemm.cc), for CPUs that have the
 * instructions. onnxruntime's CPU provider has no bf16 arithmetic, so without it a bf16 weight is widened and
 * multiplied at float32 speed; with it Qwen2.5-0.5B's frozen products run 1.9–2.6× MLAS's float32 ones (bench).
 *
 * No binary ships or downloads: the kernel is compiled once per machine from the source beside this file by the
 * machine's C++ compiler, into the user cache, and called through koffi. Where there is no compiler, no
 * AVX512-BF16, or `STUDIO_BF16=off`, `bf16Kernel()` is null and the reason says which.
 */

const SOURCE = kernelSource('bf16-gemm.cc');

export interface Bf16Gemm {
  /**
   * c [m × n] = a [m × k] · op(b) (+ addend [m × n], which may be c); b holds bf16 bits, [n × k] when `transB`,
   * else [k × n]. The addend is summed in the kernel's first pass, so adding it costs no pass of its own.
   */
  gemm(
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Uint16Array,
    c: Float32Array,
    addend: Float32Array | null,
  ): void;
  /** The compiled library. */
  library: string;
  threads: number;
}

export interface Bf16Status {
  kernel: Bf16Gemm | null;
  /** Why the kernel is used or not, for the backend report. */
  reason: string;
}

const probed = probedOnce(probe);

/** The kernel, or null (see `bf16Status().reason`); probed and compiled on first call. */
export function bf16Kernel(): Bf16Gemm | null {
  return probed.status().kernel;
}

export function bf16Status(): Bf16Status {
  return probed.status();
}

/**
 * Turns the kernel off (false) for products that must equal float32 ones of the widened weight, such as parity
 * tests against float32 references, or back to following `STUDIO_BF16` (null). Probes again on next use.
 */
export function setBf16Kernel(on: false | null): void {
  probed.set(on);
}

/** Whether Linux reports AVX512-BF16 (elsewhere the library's own CPUID check decides). */
function cpuListsBf16(): boolean | null {
  if (process.platform !== 'linux') return null;
  try {
    return /\bavx512_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return null;
  }
}

function probe(enabled: false | null): Bf16Status {
  const off = (reason: string): Bf16Status => ({ kernel: null, reason });
  if (enabled === false) return off('turned off for float32 products of the widened weight');
  if (process.env.STUDIO_BF16 === 'off') return off('turned off by STUDIO_BF16=off');
  if (process.arch !== 'x64' || process.platform === 'win32')
    return off(
      `needs an x86-64 Linux or macOS machine with AVX512-BF16 (this is ${process.platform}-${process.arch})`,
    );
  if (cpuListsBf16() === false) return off('this CPU has no AVX512-BF16 (lscpu lists no avx512_bf16)');
  const built = compileNative(SOURCE);
  if ('error' in built) return off(built.error);
  let lib: KoffiLib;
  try {
    lib = koffi().load(built.path);
  } catch (error) {
    return off(`could not load ${built.path}: ${(error as Error).message.split('\n')[0]}`);
  }
  const supported = lib.func('int studio_bf16_supported()');
  if (supported() !== 1) return off('this CPU (or its OS) has no AVX512-BF16 with zmm state saved');
  const call = lib.func(
    'int studio_bf16_gemm(int, int, int, int, const float *, const uint16_t *, float *, const float *, int)',
  );
  const threads = nativeThreads();
  const kernel: Bf16Gemm = {
    library: built.path,
    threads,
    gemm(transB, m, n, k, a, b, c, addend) {
      if (a.length < m * k || b.length < n * k || c.length < m * n || (addend && addend.length < m * n)) {
        throw new Error(
          `bf16 gemm: arrays of ${a.length}, ${b.length}, ${c.length}${addend ? ` and ${addend.length}` : ''} values do not hold [${m} × ${k}]·[${n} × ${k}]${addend ? ` + [${m} × ${n}]` : ''} → [${m} × ${n}]`,
        );
      }
      const rc = call(transB ? 1 : 0, m, n, k, a, b, c, addend, threads);
      if (rc === -2) {
        throw new StudioError(
          'out_of_memory',
          `out of memory: the bf16 product's scratch of ${formatBytes(m * Math.ceil(k / 2) * 4)} could not be allocated: ${outOfMemoryAdvice}`,
        );
      }
      if (rc !== 0) throw new Error(`bf16 gemm failed (code ${rc})`);
    },
  };
  return { kernel, reason: `AVX512-BF16 kernel (${built.path}, ${threads} threads)` };
}
