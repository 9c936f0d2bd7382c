import * as tf from '@tensorflow/tfjs-core';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../safetensors/dtypes.ts';
import { transposedProductsAreNative } from './matmul.ts';
import { NATIVE_BACKEND } from './native/backend.ts';

/** Dtypes a frozen weight is held in: the checkpoint's float dtype (F64 and others are widened to F32). */
export type FrozenDtype = 'F32' | 'BF16' | 'F16';

/** The kernels frozen weights run through on the native backend (registered in native/frozen.ts). */
export const FROZEN_MATMUL = 'StudioFrozenMatMul';
export const FROZEN_GATHER = 'StudioFrozenGather';

/**
 * A frozen base matrix (a Linear/Conv1D/Embedding weight), in the orientation the checkpoint stores it. On the
 * native backend it is held in its checkpoint dtype (bf16 and f16 take half of float32) outside tfjs and widened
 * a block at a time inside each product; on other backends it is an ordinary float32 tensor. Never trained:
 * nothing differentiates with respect to it.
 */
export class FrozenWeight {
  private constructor(
    readonly shape: [number, number],
    private dtypeHeld: FrozenDtype,
    /** Native storage: the values in `dtypeHeld`. */
    private host: Float32Array | Uint16Array | null,
    /** Other backends: a float32 tensor (kept, disposed by `dispose`). */
    private device: tf.Tensor2D | null,
  ) {}

  /** Values in a checkpoint dtype; kept as they are on the native backend, widened to a tensor elsewhere. */
  static fromValues(
    dtype: FrozenDtype,
    shape: [number, number],
    values: Float32Array | Uint16Array,
  ): FrozenWeight {
    if (values.length !== shape[0] * shape[1]) {
      throw new Error(
        `frozen weight of shape [${shape}] needs ${shape[0] * shape[1]} values, got ${values.length}`,
      );
    }
    if (tf.getBackend() === NATIVE_BACKEND) return new FrozenWeight(shape, dtype, values, null);
    const f32 = dtype === 'F32' ? (values as Float32Array) : widen(dtype, values as Uint16Array);
    return new FrozenWeight(shape, 'F32', null, tf.keep(tf.tensor2d(f32, shape)));
  }

  /** Takes over a float32 tensor (disposed here on the native backend, kept as the storage elsewhere). */
  static adopt(t: tf.Tensor2D): FrozenWeight {
    const shape: [number, number] = [t.shape[0], t.shape[1]];
    if (tf.getBackend() !== NATIVE_BACKEND) return new FrozenWeight(shape, 'F32', null, tf.keep(t));
    const values = (t.dataSync() as Float32Array).slice();
    t.dispose();
    return new FrozenWeight(shape, 'F32', values, null);
  }

  /** The dtype the values are held in now (F32 off the native backend). */
  get dtype(): FrozenDtype {
    return this.dtypeHeld;
  }

  /** Elements (rows × cols). */
  get size(): number {
    return this.shape[0] * this.shape[1];
  }

  /** Bytes held. */
  get bytes(): number {
    return this.shape[0] * this.shape[1] * (this.dtypeHeld === 'F32' ? 4 : 2);
  }

  /** Native storage (for the native kernels); null on other backends. */
  hostValues(): Float32Array | Uint16Array | null {
    return this.host;
  }

  /**
   * x·op(W) (+ bias) (+ addend) for rows x [N, k]: op(W) = Wᵀ when `transposeWeight` (Linear's x·Wᵀ), else W
   * (Conv1D). The bias is frozen too: its gradient is never computed (a bias add's backward summed every output
   * row). `addend` [N, out] is summed inside the product where the kernel can (the bf16 kernel's first pass).
   */
  matmul(
    x: tf.Tensor2D,
    transposeWeight: boolean,
    bias: tf.Tensor1D | null = null,
    addend: tf.Tensor2D | null = null,
  ): tf.Tensor2D {
    if (this.device) {
      const y = this.deviceMatMul(x, transposeWeight);
      const biased = bias ? addFrozenBias(y, bias) : y;
      return addend ? tf.add(biased, addend) : biased;
    }
    return tf.engine().runKernel(FROZEN_MATMUL, addend ? { x, addend } : { x }, {
      weight: this,
      transposeWeight,
      bias,
    } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  }

  private deviceMatMul(x: tf.Tensor2D, transposeWeight: boolean): tf.Tensor2D {
    const device = this.device!;
    const [rows, inFeatures] = x.shape;
    const outFeatures = this.shape[0];
    // backends without native transposed GEMM re-lay a transposed operand out on every call: with few rows
    // (generation) (W·xᵀ)ᵀ moves x and y through the transposes instead of the whole weight
    if (
      transposeWeight &&
      !transposedProductsAreNative() &&
      rows * (inFeatures + outFeatures) < inFeatures * outFeatures
    ) {
      return tf.tidy(() => tf.transpose(tf.matMul(device, x, false, true)) as tf.Tensor2D);
    }
    return tf.matMul(x, device, false, transposeWeight);
  }

  /** Rows W[ids] (an embedding lookup) → [N, cols]. */
  gather(ids: tf.Tensor1D): tf.Tensor2D {
    if (this.device) return tf.gather(this.device, ids);
    return tf.engine().runKernel(FROZEN_GATHER, { indices: ids }, {
      weight: this,
    } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  }

  /**
   * Rows [start, start + count) as a frozen weight of their own (the caller disposes it). On the native backend
   * it shares this weight's storage, so its products read the rows as they are held (no float32 copy); elsewhere
   * it is a slice.
   */
  rowBlock(start: number, count: number): FrozenWeight {
    const [rows, cols] = this.shape;
    if (!(start >= 0 && count >= 0 && start + count <= rows)) {
      throw new Error(`rows ${start}..${start + count} are outside a frozen weight of ${rows} rows`);
    }
    if (this.device) {
      return new FrozenWeight(
        [count, cols],
        'F32',
        null,
        tf.keep(tf.slice(this.device, [start, 0], [count, cols])),
      );
    }
    if (!this.host) throw new Error('frozen weight: the weight was disposed');
    return new FrozenWeight(
      [count, cols],
      this.dtypeHeld,
      this.host.subarray(start * cols, (start + count) * cols),
      null,
    );
  }

  /** The values as a new float32 tensor (the caller disposes it). */
  toTensor(): tf.Tensor2D {
    if (this.device) return this.device.clone();
    return tf.tensor2d(this.float32(), this.shape);
  }

  /** The values as float32 (a new array on the native backend, the tensor's own data elsewhere). */
  float32(): Float32Array {
    if (this.device) return this.device.dataSync() as Float32Array;
    return this.dtypeHeld === 'F32'
      ? (this.host as Float32Array).slice()
      : widen(this.dtypeHeld, this.host as Uint16Array);
  }

  /**
   * Replaces the values with those of `t` (same shape), rounded to the held dtype as PyTorch's in-place copy into
   * a bf16/f16 parameter does. Every module sharing this weight (a tied lm_head) sees the new values.
   */
  replace(t: tf.Tensor2D): void {
    if (t.shape[0] !== this.shape[0] || t.shape[1] !== this.shape[1]) {
      throw new Error(`cannot replace a frozen weight of shape [${this.shape}] with [${t.shape}]`);
    }
    if (this.device) {
      const old = this.device;
      this.device = tf.keep(t.clone());
      old.dispose();
      return;
    }
    this.host = narrow(this.dtypeHeld, (t.dataSync() as Float32Array).slice());
  }

  /** A copy of the values, for `restore` (the merged export folds an adapter in and puts the original back). */
  snapshot(): FrozenSnapshot {
    return this.device ? { device: tf.keep(this.device.clone()) } : { host: this.host!.slice() };
  }

  /** Puts back the values of `snapshot()` exactly (the snapshot is consumed). */
  restore(s: FrozenSnapshot): void {
    if (s.device) {
      this.device?.dispose();
      this.device = s.device;
    } else if (s.host) {
      this.host = s.host;
    }
  }

  dispose(): void {
    this.device?.dispose();
    this.device = null;
    this.host = null;
  }

  get isDisposed(): boolean {
    return !this.device && !this.host;
  }
}

export interface FrozenSnapshot {
  host?: Float32Array | Uint16Array;
  device?: tf.Tensor2D;
}

function narrow(dtype: FrozenDtype, values: Float32Array): Float32Array | Uint16Array {
  if (dtype === 'F32') return values;
  return dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
}

/** bf16/f16 → float32 (exact). */
function widen(dtype: 'BF16' | 'F16', values: Uint16Array): Float32Array {
  return dtype === 'BF16' ? bf16ToF32(values) : f16ToF32(values);
}

/** y + bias whose backward passes dy through and keeps nothing alive (tfjs' Add saves both operands). */
function addFrozenBias(y: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  const op = tf.customGrad(((yi: tf.Tensor, bi: tf.Tensor) => ({
    value: tf.add(yi, bi),
    gradFunc: (dy: tf.Tensor) => [dy, tf.zerosLike(bi)],
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(y, bias) as tf.Tensor2D;
}
