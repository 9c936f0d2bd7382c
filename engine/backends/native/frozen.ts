import * as tf from '@tensorflow/tfjs-core';
import { widenInto } from '../../safetensors/dtypes.ts';
import { FROZEN_GATHER, FROZEN_MATMUL, type FrozenDtype, type FrozenWeight } from '../frozen.ts';
import { NATIVE_BACKEND, type NativeBackend, type NativeKernelArgs } from './backend.ts';
import { bf16Kernel } from './bf16.ts';
import { accumulate, broadcastRows } from './library.ts';
import { NATIVE_MIN_FLOPS, smallGemm } from './matmul.ts';

/**
 * Products and lookups with frozen weights held in their checkpoint dtype. A bf16/f16 weight is widened to
 * float32 one block (about 16 MiB) at a time into a reused scratch buffer and multiplied there, so a product
 * never holds a float32 copy of the whole weight (an LM head of 151,936 × 896 is 545 MB in float32).
 */

let BLOCK_ELEMENTS = 1 << 22;

/** Sets the widening block size (elements); tests shrink it so small weights cross block edges. */
export function setFrozenBlockElements(elements: number): number {
  const previous = BLOCK_ELEMENTS;
  BLOCK_ELEMENTS = Math.max(1, Math.floor(elements));
  return previous;
}
const scratches = { block: new Float32Array(0), partial: new Float32Array(0), columns: new Float32Array(0) };

function scratch(size: number, which: keyof typeof scratches): Float32Array {
  if (scratches[which].length < size) scratches[which] = new Float32Array(size);
  return scratches[which].subarray(0, size);
}

function gemm(
  backend: NativeBackend,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
): void {
  if (2 * m * n * k < NATIVE_MIN_FLOPS) smallGemm(false, transB, m, n, k, a, b, c);
  else backend.gemm.sgemm(false, transB, m, n, k, a, b, c);
}

/** Copies a [rows × width] block into columns `c0..c0+width` of `y` [rows × cols]. */
function scatterColumns(
  src: Float32Array,
  rows: number,
  width: number,
  y: Float32Array,
  cols: number,
  c0: number,
) {
  for (let i = 0; i < rows; i++) y.set(src.subarray(i * width, (i + 1) * width), i * cols + c0);
}

/** y = x·op(W) (+ bias) (+ addend, an optional input of the output's shape). */
function frozenMatMul({ inputs, backend, attrs }: NativeKernelArgs): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const addend = (inputs.addend ?? null) as tf.TensorInfo | null;
  const weight = attrs?.weight as unknown as FrozenWeight;
  const transposeWeight = Boolean(attrs?.transposeWeight);
  const bias = (attrs?.bias ?? null) as tf.TensorInfo | null;
  const [wr, wc] = weight.shape;
  const [n, k] = x.shape;
  const inner = transposeWeight ? wc : wr;
  const out = transposeWeight ? wr : wc;
  if (x.shape.length !== 2 || k !== inner) {
    throw new Error(
      `frozen matmul: input [${x.shape}] does not fit weight [${weight.shape}]${transposeWeight ? 'ᵀ' : ''}`,
    );
  }
  const host = weight.hostValues();
  if (!host) throw new Error('frozen matmul: the weight was disposed');
  const xv = backend.values(x);
  const y = backend.alloc(Float32Array, n * out);
  if (n === 0 || out === 0) return backend.output([n, out], 'float32', y);
  if (bias && bias.shape[0] !== out)
    throw new Error(`frozen matmul: bias [${bias.shape}] does not fit ${out} output features`);
  if (addend && (addend.shape.length !== 2 || addend.shape[0] !== n || addend.shape[1] !== out))
    throw new Error(`frozen matmul: addend [${addend.shape}] is not the output's shape [${n},${out}]`);
  const av = addend ? backend.values(addend) : null;
  let added = false;
  if (weight.dtype === 'F32') gemm(backend, transposeWeight, n, out, k, xv, host as Float32Array, y);
  else added = widenedMatMul(backend, weight, transposeWeight, n, k, xv, y, av);
  if (av && !added) accumulate(backend, y, av);
  if (bias) broadcastRows(backend, 'Add', y, backend.values(bias), n, out, false);
  return backend.output([n, out], 'float32', y);
}

/**
 * y = x·op(W) for a bf16/f16 weight: on the bf16 kernel where the CPU has one, else widened a block at a time.
 * Returns whether `addend` was summed in too (the bf16 kernel does it in its first pass; else the caller adds).
 */
function widenedMatMul(
  backend: NativeBackend,
  weight: FrozenWeight,
  transposeWeight: boolean,
  n: number,
  k: number,
  xv: Float32Array,
  y: Float32Array,
  addend: Float32Array | null,
): boolean {
  const [wr, wc] = weight.shape;
  const out = transposeWeight ? wr : wc;
  const dtype = weight.dtype as Exclude<FrozenDtype, 'F32'>;
  const bits = weight.hostValues() as Uint16Array;
  const kernel = dtype === 'BF16' ? bf16Kernel() : null;
  if (kernel) {
    // on AVX512-BF16 the weight is read as it is held, with x rounded to bf16 as PyTorch's bf16 matmul does
    kernel.gemm(transposeWeight, n, out, k, xv, bits, y, addend);
    return true;
  }
  const rowsPer = Math.max(1, Math.floor(BLOCK_ELEMENTS / wc));
  for (let r0 = 0; r0 < wr; r0 += rowsPer) {
    const rows = Math.min(rowsPer, wr - r0);
    const w = scratch(rows * wc, 'block');
    widenInto(dtype, bits, r0 * wc, rows * wc, w, 0);
    if (rows === wr) {
      gemm(backend, transposeWeight, n, transposeWeight ? rows : wc, k, xv, w, y);
    } else if (transposeWeight) {
      // y = x·Wᵀ, W [out × k]: a block of W rows gives a block of y columns
      const part = scratch(n * rows, 'partial');
      gemm(backend, true, n, rows, k, xv, w, part);
      scatterColumns(part, n, rows, y, out, r0);
    } else {
      // y = x·W, W [k × out]: a block of W rows is a slice of the contraction, against x's matching columns
      // (copied out), summed into y. Blocks of W columns instead were one widening call per row and a product a
      // few columns wide for an LM head's gradient (151,936 × 896: 27 columns a block), which made
      // Qwen2.5-0.5B's bf16 step twice its fp32 one.
      const xs = scratch(n * rows, 'columns');
      for (let i = 0; i < n; i++) xs.set(xv.subarray(i * k + r0, i * k + r0 + rows), i * rows);
      if (r0 === 0) {
        gemm(backend, false, n, wc, rows, xs, w, y);
      } else {
        const part = scratch(n * wc, 'partial');
        gemm(backend, false, n, wc, rows, xs, w, part);
        accumulate(backend, y, part);
      }
    }
  }
  return false;
}

function frozenGather({ inputs, backend, attrs }: NativeKernelArgs): tf.TensorInfo {
  const indices = inputs.indices as tf.TensorInfo;
  const weight = attrs?.weight as unknown as FrozenWeight;
  const [rows, cols] = weight.shape;
  const host = weight.hostValues();
  if (!host) throw new Error('frozen gather: the weight was disposed');
  const ids = backend.values<Int32Array>(indices);
  const y = backend.alloc(Float32Array, ids.length * cols);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < rows))
      throw new Error(`embedding lookup: token id ${id} is not in [0, ${rows - 1}]`);
    if (weight.dtype === 'F32') y.set((host as Float32Array).subarray(id * cols, (id + 1) * cols), i * cols);
    else widenInto(weight.dtype, host as Uint16Array, id * cols, cols, y, i * cols);
  }
  return backend.output([...indices.shape, cols], 'float32', y);
}

let gradientRegistered = false;

export function frozenKernels(): tf.KernelConfig[] {
  if (!gradientRegistered) {
    gradientRegistered = true;
    // d(x·op(W) + b + addend)/dx = dy·op(W)ᵀ: the same kernel with the transpose flipped and no bias; W and b
    // are never differentiated
    tf.registerGradient({
      kernelName: FROZEN_MATMUL,
      gradFunc: (dy, _saved, attrs) => ({
        addend: () => tf.clone(dy as tf.Tensor),
        x: () =>
          tf.engine().runKernel(FROZEN_MATMUL, { x: dy as tf.Tensor }, {
            weight: attrs.weight,
            transposeWeight: !attrs.transposeWeight,
            bias: null,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
      }),
    });
  }
  return [
    {
      kernelName: FROZEN_MATMUL,
      backendName: NATIVE_BACKEND,
      kernelFunc: frozenMatMul as unknown as tf.KernelFunc,
    },
    {
      kernelName: FROZEN_GATHER,
      backendName: NATIVE_BACKEND,
      kernelFunc: frozenGather as unknown as tf.KernelFunc,
    },
  ];
}
