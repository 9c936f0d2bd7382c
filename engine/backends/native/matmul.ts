import * as tf from '@tensorflow/tfjs-core';
import { broadcastIndices, gemmInto, type MatMulPlan, planMatMul } from '../gemm-plan.ts';
import type { NativeGemm } from '../types.ts';
import {
  cpuKernel,
  NATIVE_BACKEND,
  type NativeBackend,
  type NativeKernelArgs,
  type NativeKernelFunc,
} from './backend.ts';
import { cpuOps } from './cpu-ops.ts';

/** Below this many flops a plain loop beats a native call's fixed cost (tens of microseconds). */
export const NATIVE_MIN_FLOPS = 1 << 16;

/** c = op(a)·op(b) for one matrix pair, accumulated in float64 (tiny products only). */
export function smallGemm(
  ta: boolean,
  tb: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
): void {
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let l = 0; l < k; l++) acc += a[ta ? l * m + i : i * k + l] * b[tb ? j * k + l : l * n + j];
      c[i * n + j] = acc;
    }
}

/**
 * Whether op(a)·op(b) runs on the compiled kernel for products with a small dimension (LoRA's rank r: x·Aᵀ,
 * h·Bᵀ and their gradients) rather than the GEMM library. MLAS, through a session run a call, took these at
 * 50–90 GFLOP/s in a 3B step; the compiled kernel runs them at 190–330 (bench/shapes). It packs a transposed b
 * whole, and its tiles stream op(b) once per 4 row tiles, so large-k, large-n products stay on the library.
 */
export function smallProduct(transB: boolean, m: number, n: number, k: number): boolean {
  return k <= 64 || n <= 64 || (m <= 64 && !transB && k <= 2048);
}

const routed = new WeakMap<NativeGemm, NativeGemm>();

/** `gemm` with its single products routed to the compiled small-dimension kernel where `smallProduct` says. */
export function productGemm(gemm: NativeGemm): NativeGemm {
  let r = routed.get(gemm);
  if (!r) {
    r = {
      ...gemm,
      sgemm: (transA, transB, m, n, k, a, b, c) => {
        const ops = cpuOps();
        if (ops && smallProduct(transB, m, n, k)) ops.sgemm(transA, transB, m, n, k, a, b, c);
        else gemm.sgemm(transA, transB, m, n, k, a, b, c);
      },
    };
    routed.set(gemm, r);
  }
  return r;
}

export function matMulInto(
  backend: NativeBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  p: MatMulPlan,
): Float32Array {
  const out = backend.alloc(Float32Array, p.batch * p.m * p.n);
  const av = backend.values(a);
  const bv = backend.values(b);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  if (2 * p.batch * p.m * p.n * p.k >= NATIVE_MIN_FLOPS) {
    gemmInto(productGemm(backend.gemm), p, aBatch, bBatch, transposeA, transposeB, av, bv, out);
    return out;
  }
  const ia = broadcastIndices(p.batchShape, aBatch);
  const ib = broadcastIndices(p.batchShape, bBatch);
  const { m, n, k } = p;
  for (let i = 0; i < p.batch; i++) {
    smallGemm(
      transposeA,
      transposeB,
      m,
      n,
      k,
      av.subarray(ia[i] * m * k, (ia[i] + 1) * m * k),
      bv.subarray(ib[i] * k * n, (ib[i] + 1) * k * n),
      out.subarray(i * m * n, (i + 1) * m * n),
    );
  }
  return out;
}

function batchMatMul(args: NativeKernelArgs): tf.TensorInfo {
  const a = args.inputs.a as tf.TensorInfo;
  const b = args.inputs.b as tf.TensorInfo;
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const p = planMatMul(a, b, transposeA, transposeB, NATIVE_BACKEND);
  return args.backend.output(
    p.outShape,
    'float32',
    matMulInto(args.backend, a, b, transposeA, transposeB, p),
  );
}

/** `_FusedMatMul`: the product, then bias and activation through this backend's own kernels. */
function fusedMatMul(args: NativeKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const activation = (attrs?.activation as string | undefined) ?? 'linear';
  if (activation !== 'linear' && activation !== 'relu')
    return cpuKernel(tf._FusedMatMul)(args) as tf.TensorInfo;
  let y = batchMatMul({
    inputs: { a: inputs.a, b: inputs.b },
    backend,
    attrs: { transposeA: Boolean(attrs?.transposeA), transposeB: Boolean(attrs?.transposeB) },
  });
  const run = (name: string, kernelInputs: tf.NamedTensorInfoMap) => {
    const config = tf.getKernel(name, NATIVE_BACKEND)!;
    const z = (config.kernelFunc as unknown as NativeKernelFunc)({
      inputs: kernelInputs,
      backend,
    }) as tf.TensorInfo;
    backend.disposeIntermediateTensorInfo(y);
    y = z;
  };
  if (inputs.bias) run(tf.Add, { a: y, b: inputs.bias });
  if (activation === 'relu') run(tf.Relu, { x: y });
  return y;
}

export function matMulKernels(): tf.KernelConfig[] {
  return [
    {
      kernelName: tf.BatchMatMul,
      backendName: NATIVE_BACKEND,
      kernelFunc: batchMatMul as unknown as tf.KernelFunc,
    },
    {
      kernelName: tf._FusedMatMul,
      backendName: NATIVE_BACKEND,
      kernelFunc: fusedMatMul as unknown as tf.KernelFunc,
    },
  ];
}
