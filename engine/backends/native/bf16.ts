import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { outOfMemoryAdvice, StudioError } from '../../common/errors.ts';
import { formatBytes } from '../../io/bytes.ts';
import { type KoffiLib, koffi, nativeThreads } from '../native-libs.ts';

/**
 * The AVX512-BF16 product of float32 rows with a bf16 frozen weight (bf16/bf16-gemm.cc), for CPUs that have the
 * instructions. onnxruntime's CPU provider has no bf16 arithmetic, so without it a bf16 weight is widened and
 * multiplied at float32 speed; with it Qwen2.5-0.5B's frozen products run 1.9–2.6× MLAS's float32 ones (bench).
 *
 * No binary ships or downloads: the kernel is compiled once per machine from the source beside this file by the
 * machine's C++ compiler, into the user cache, and called through koffi. Where there is no compiler, no
 * AVX512-BF16, or `STUDIO_BF16=off`, `bf16Kernel()` is null and the reason says which.
 */

const SOURCE = fileURLToPath(new URL('./bf16/bf16-gemm.cc', import.meta.url));

export interface Bf16Gemm {
  /** c [m × n] = a [m × k] · op(b) (+ c when `accumulate`); b holds bf16 bits, [n × k] when `transB`, else [k × n]. */
  gemm(
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Uint16Array,
    c: Float32Array,
    accumulate: boolean,
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

let status: Bf16Status | null = null;
/** Set by `setBf16Kernel`: false turns the kernel off whatever the environment says; null follows it. */
let enabled: boolean | null = null;

/** The kernel, or null (see `bf16Status().reason`); probed and compiled on first call. */
export function bf16Kernel(): Bf16Gemm | null {
  return bf16Status().kernel;
}

export function bf16Status(): Bf16Status {
  status ??= probe();
  return status;
}

/**
 * Turns the kernel off (false) for products that must equal float32 ones of the widened weight, such as parity
 * tests against float32 references, or back to following `STUDIO_BF16` (null). Probes again on next use.
 */
export function setBf16Kernel(on: false | null): void {
  enabled = on;
  status = null;
}

/** Where compiled kernels are kept: `STUDIO_CACHE_DIR`, else `$XDG_CACHE_HOME` or ~/.cache, in adapter-studio. */
export function nativeCacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (env.STUDIO_CACHE_DIR) return join(env.STUDIO_CACHE_DIR, 'native');
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'adapter-studio', 'native');
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

function probe(): Bf16Status {
  const off = (reason: string): Bf16Status => ({ kernel: null, reason });
  if (enabled === false) return off('turned off for float32 products of the widened weight');
  if (process.env.STUDIO_BF16 === 'off') return off('turned off by STUDIO_BF16=off');
  if (process.arch !== 'x64' || process.platform === 'win32')
    return off(
      `needs an x86-64 Linux or macOS machine with AVX512-BF16 (this is ${process.platform}-${process.arch})`,
    );
  if (cpuListsBf16() === false) return off('this CPU has no AVX512-BF16 (lscpu lists no avx512_bf16)');
  if (!existsSync(SOURCE)) return off(`the kernel source is missing (${SOURCE})`);
  const built = compile();
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
    'int studio_bf16_gemm(int, int, int, int, const float *, const uint16_t *, float *, int, int)',
  );
  const threads = nativeThreads();
  const kernel: Bf16Gemm = {
    library: built.path,
    threads,
    gemm(transB, m, n, k, a, b, c, accumulate) {
      if (a.length < m * k || b.length < n * k || c.length < m * n) {
        throw new Error(
          `bf16 gemm: arrays of ${a.length}, ${b.length} and ${c.length} values do not hold [${m} × ${k}]·[${n} × ${k}] → [${m} × ${n}]`,
        );
      }
      const rc = call(transB ? 1 : 0, m, n, k, a, b, c, accumulate ? 1 : 0, threads);
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

/** Compiles the kernel into the cache, once per source version; a temp file renamed, so no half-written library. */
function compile(): { path: string } | { error: string } {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = nativeCacheDir();
  const path = join(dir, `bf16-gemm-${hash}.${process.platform === 'darwin' ? 'dylib' : 'so'}`);
  if (existsSync(path)) return { path };
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    return { error: `cannot create the kernel cache ${dir}: ${(error as Error).message}` };
  }
  const tmp = `${path}.${process.pid}.tmp`;
  const compilers = [process.env.CXX, 'c++', 'g++', 'clang++'].filter((c): c is string => Boolean(c));
  const failures: string[] = [];
  for (const cxx of compilers) {
    const run = spawnSync(cxx, ['-O3', '-std=c++17', '-shared', '-fPIC', '-pthread', SOURCE, '-o', tmp], {
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (run.status === 0) {
      renameSync(tmp, path);
      return { path };
    }
    rmSync(tmp, { force: true });
    const why = run.error
      ? run.error.message
      : (run.stderr.split('\n').find((l) => /error/i.test(l)) ?? `exit ${run.status}`);
    failures.push(`${cxx}: ${why.trim()}`);
  }
  return { error: `no C++ compiler could build the kernel (${failures.join('; ')})` };
}
