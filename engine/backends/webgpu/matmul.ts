import * as tf from '@tensorflow/tfjs-core';
import { type Activation, chooseVariant, type GemmOperand, gemm } from './gemm.ts';
import type { GpuRuntime } from './runtime.ts';

const FUSED_ACTIVATIONS = new Set<string>(['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu']);

function stripOnes(shape: number[]): number[] {
  let i = 0;
  while (i < shape.length && shape[i] === 1) i++;
  return shape.slice(i);
}

export interface MatMulRequest {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transA: boolean;
  transB: boolean;
  bias?: tf.TensorInfo;
  activation?: string;
  alpha?: number;
}

/**
 * BatchMatMul / _FusedMatMul on our GEMM, or null for what it does not cover (non-float, general batch
 * broadcasting, prelu, empty shapes), which the stock kernel then runs. A frozen weight as B is read from its
 * GPU copy (f16 or f32, split by rows); a batch of A against one B is folded into one taller product.
 */
export function matMul(rt: GpuRuntime, r: MatMulRequest): tf.TensorInfo | null {
  const { a, b, transA, transB } = r;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  if (r.activation && !FUSED_ACTIVATIONS.has(r.activation)) return null;
  if (rt.frozen.has(a.dataId)) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb || m === 0 || n === 0 || k === 0) return null;
  const aOuter = a.shape.slice(0, -2);
  const bOuter = b.shape.slice(0, -2);
  const sa = stripOnes(aOuter);
  const sb = stripOnes(bOuter);
  const batchedA = sa.length > 0;
  const batchedB = sb.length > 0;
  if (batchedA && batchedB && sa.join(',') !== sb.join(',')) return null;
  if (r.bias && tf.util.sizeFromShape(r.bias.shape) !== n) return null;
  if (r.bias && r.bias.shape[r.bias.shape.length - 1] !== n) return null;
  const outer = tf.backend_util.assertAndGetBroadcastShape(aOuter, bOuter);
  const batch = tf.util.sizeFromShape(outer);
  const frozen = rt.frozen.get(b.dataId);
  const bOperand: GemmOperand = frozen
    ? { kind: 'frozen', dtype: frozen.dtype, chunks: frozen.chunks }
    : { kind: 'tensor', info: b };
  const fold = batchedA && !batchedB && !transA;
  const c = rt.output([...outer, m, n]);
  gemm(rt, {
    a: { kind: 'tensor', info: a },
    b: bOperand,
    c,
    m: fold ? batch * m : m,
    n,
    k,
    batch: fold ? 1 : batch,
    batchedA: batchedA && !fold,
    batchedB,
    transA,
    transB,
    bias: r.bias,
    activation: (r.activation ?? 'linear') as Activation,
    alpha: r.alpha,
    variant: chooseVariant(rt, 'f32', frozen?.dtype ?? 'f32'),
  });
  return c;
}
