import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { outOfMemoryAdvice, StudioError } from '../../common/errors.ts';
import { formatBytes } from '../../io/bytes.ts';
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
  readonly pool = new BufferPool();
  /** Arrays handed out by `alloc` that no reader outside the kernels has seen: recycled when disposed. */
  private readonly recyclable = new WeakSet<ArrayBufferLike>();

  constructor(readonly gemm: NativeGemm) {
    super();
    // the cpu backend's one-time "install tfjs-node" banner is about a backend we deliberately don't use
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** The stored values of a tensor, without a copy (kernels must not write into inputs). */
  values<T extends Values = Float32Array>(info: tf.TensorInfo): T {
    return this.data.get(info.dataId)!.values as T;
  }

  /**
   * A kernel's output array of `length` elements, from the pool when a disposed one fits. Contents are
   * unspecified unless `zeroed`: kernels write every element.
   */
  alloc<T extends Values>(
    kind: { new (buffer: ArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number },
    length: number,
    zeroed = false,
  ): T {
    const bytes = length * kind.BYTES_PER_ELEMENT;
    const buffer = this.pool.take(bytes);
    if (!buffer) return new kind(new ArrayBuffer(bytes), 0, length);
    this.recyclable.add(buffer);
    const out = new kind(buffer, 0, length);
    if (zeroed) out.fill(0);
    return out;
  }

  /**
   * A kernel's own scratch of `length` floats from the pool, to hand back with `release` before the kernel
   * returns. A fresh array a call was paged in and zeroed by the OS every time until the garbage collector ran:
   * attention's two 6 MB score arrays cost 4–10 ms a call that way at 3B's 24 heads × 256².
   */
  scratch(length: number): Float32Array {
    const buffer = this.pool.take(length * 4);
    return buffer ? new Float32Array(buffer, 0, length) : new Float32Array(length);
  }

  /** Gives `scratch` arrays back to the pool. */
  release(...arrays: Float32Array[]): void {
    for (const a of arrays)
      if (a.buffer.byteLength >= BufferPool.MIN_BYTES) this.pool.give(a.buffer as ArrayBuffer);
  }

  /** A new tensor holding `values` (taken over, not copied). */
  output(shape: number[], dtype: tf.DataType, values: Values): tf.TensorInfo {
    return this.makeTensorInfo(shape, dtype, values);
  }

  /** Whatever leaves through a read may be kept by the reader: such arrays are never recycled. */
  override readSync(dataId: object): tf.backend_util.BackendValues {
    const values = this.data.get(dataId)?.values;
    if (values && ArrayBuffer.isView(values)) this.recyclable.delete(values.buffer);
    return super.readSync(dataId);
  }

  override disposeData(dataId: object, force = false): boolean {
    const entry = this.data.get(dataId);
    const values = entry?.values;
    const freed = super.disposeData(dataId, force);
    if (freed && values && ArrayBuffer.isView(values) && this.recyclable.has(values.buffer)) {
      this.recyclable.delete(values.buffer);
      this.pool.give(values.buffer as ArrayBuffer);
    }
    return freed;
  }

  override floatPrecision(): 32 {
    return 32;
  }
}

/**
 * Disposed kernel outputs, kept for the next allocation of the same size class, so a training loop reuses its
 * activation memory step after step instead of leaving it to the garbage collector (whose lag made the peak
 * resident memory of a 0.5B model's step twice its live tensors). Size classes are ~9 % apart; small arrays
 * are left to the garbage collector.
 */
export class BufferPool {
  static readonly MIN_BYTES = 1 << 16;
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Bytes held for reuse now. */
  held = 0;

  constructor(readonly capBytes = 2 ** 33) {}

  /** The allocation size of a request: the next of 8 classes per doubling. */
  static classOf(bytes: number): number {
    if (bytes <= BufferPool.MIN_BYTES) return bytes;
    const exp = Math.floor(Math.log2(bytes));
    const step = 2 ** (exp - 3);
    return Math.ceil(bytes / step) * step;
  }

  take(bytes: number): ArrayBuffer | null {
    if (bytes < BufferPool.MIN_BYTES) return null;
    const size = BufferPool.classOf(bytes);
    const list = this.free.get(size);
    const buffer = list?.pop();
    if (buffer) {
      this.held -= size;
      return buffer;
    }
    try {
      return new ArrayBuffer(size);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      // what the pool holds may be what is missing: let it go and ask once more
      this.clear();
      try {
        return new ArrayBuffer(size);
      } catch {
        throw new StudioError(
          'out_of_memory',
          `out of memory: a tensor of ${formatBytes(size)} could not be allocated: ${outOfMemoryAdvice}`,
          { cause: error },
        );
      }
    }
  }

  give(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (this.held + size > this.capBytes) return;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(buffer);
    this.held += size;
  }

  /** Lets the garbage collector have every held buffer. */
  clear(): void {
    this.free.clear();
    this.held = 0;
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
