import { koffi } from '../native-libs.ts';

/**
 * Keeps memory the native backend frees for its next tensors. glibc hands allocations over 128 KiB (at first)
 * out as fresh mmaps and unmaps them on free, so every large tensor of a step, where the buffer pool does not
 * serve it (kernel scratch, onnxruntime's and the bf16 kernel's buffers, tensors made from host data), was
 * zero-filled page by page again: Qwen2.5-0.5B's step at 4 × 256 took 1.7 M page faults and 9.1–9.9 s; with
 * blocks up to 32 MiB taken from the heap and the heap never trimmed below 2 GiB, 0.3 M and 7.3–7.6 s, at the same
 * peak RSS (3.84 GB). Elsewhere (musl, macOS, Windows) nothing changes.
 */

const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
/** glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2). */
const MMAP_THRESHOLD_MAX = 32 * 2 ** 20;
const TRIM_THRESHOLD = 2 ** 31 - 1;

let outcome: string | null = null;

/** Applies the setting once per process; says what was done, for the backend report. */
export function retainFreedMemory(): string {
  outcome ??= apply();
  return outcome;
}

function apply(): string {
  if (process.platform !== 'linux') return `allocator left as is (${process.platform})`;
  let mallopt: (param: number, value: number) => number;
  try {
    const fn = koffi().load('libc.so.6').func('int mallopt(int, int)');
    mallopt = (param, value) => fn(param, value) as number;
  } catch {
    return 'allocator left as is (no glibc mallopt)';
  }
  const ok =
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) === 1 && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) === 1;
  return ok
    ? 'glibc keeps freed blocks up to 32 MiB for reuse (mallopt)'
    : 'allocator left as is (glibc refused mallopt)';
}
