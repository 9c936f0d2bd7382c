import * as tf from '@tensorflow/tfjs-core';
import type { NativeGemm } from './types.ts';

/** The shape arithmetic of one `BatchMatMul`: `op(a)·op(b)` with numpy batch broadcasting. */
export interface MatMulPlan {
  outShape: number[];
  batchShape: number[];
  batch: number;
  batchA: number;
  batchB: number;
  m: number;
  n: number;
  k: number;
}

export function planMatMul(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  backendName: string,
): MatMulPlan {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) {
    throw new Error(`matMul needs rank ≥ 2 inputs, got shapes [${a.shape}] and [${b.shape}]`);
  }
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new Error(`matMul on ${backendName} supports float32 only, got ${a.dtype} and ${b.dtype}`);
  }
  const kA = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kB = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  if (kA !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${kA}) and (${kB}) of Tensors with shapes ${a.shape} and ${b.shape} and ` +
        `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return {
    outShape: [...batchShape, m, n],
    batchShape,
    batch: tf.util.sizeFromShape(batchShape),
    batchA: tf.util.sizeFromShape(a.shape.slice(0, -2)),
    batchB: tf.util.sizeFromShape(b.shape.slice(0, -2)),
    m,
    n,
    k: kA,
  };
}

/** For each output batch index, the operand's batch index under numpy broadcasting. */
export function broadcastIndices(batchShape: number[], operandBatchShape: number[]): Int32Array {
  const rank = batchShape.length;
  const padded = [...new Array(rank - operandBatchShape.length).fill(1), ...operandBatchShape];
  const strides = new Array(rank).fill(0);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = padded[d] === 1 ? 0 : s;
    s *= padded[d];
  }
  const total = tf.util.sizeFromShape(batchShape);
  const out = new Int32Array(total);
  for (let i = 0; i < total; i++) {
    let rest = i;
    let idx = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const coord = rest % batchShape[d];
      rest = Math.floor(rest / batchShape[d]);
      idx += coord * strides[d];
    }
    out[i] = idx;
  }
  return out;
}

/** Batch layouts a single batched GEMM call handles: equal batches, or one side a single matrix. */
export function simpleBatch(p: MatMulPlan): boolean {
  return (p.batchA === p.batch || p.batchA === 1) && (p.batchB === p.batch || p.batchB === 1);
}

/**
 * Runs a planned product on a native GEMM into `c` (which holds `p.outShape`), whatever the batch layout:
 * one call, the batch folded into rows, one batched call, or one call per broadcast batch element.
 */
export function gemmInto(
  gemm: NativeGemm,
  p: MatMulPlan,
  aBatchShape: number[],
  bBatchShape: number[],
  transposeA: boolean,
  transposeB: boolean,
  av: Float32Array,
  bv: Float32Array,
  cv: Float32Array,
): void {
  const { m, n, k, batch, batchA, batchB } = p;
  if (batch * m * n === 0) return;
  if (k === 0) {
    cv.fill(0);
    return;
  }
  if (batch === 1) {
    gemm.sgemm(transposeA, transposeB, m, n, k, av, bv, cv);
  } else if (!transposeA && batchB === 1) {
    // a shared right operand: fold the batch into rows, one large GEMM
    gemm.sgemm(false, transposeB, batch * m, n, k, av, bv, cv);
  } else if (simpleBatch(p)) {
    gemm.sgemmBatched(transposeA, transposeB, batch, batchA, batchB, m, n, k, av, bv, cv);
  } else {
    const ia = broadcastIndices(p.batchShape, aBatchShape);
    const ib = broadcastIndices(p.batchShape, bBatchShape);
    const aSize = m * k;
    const bSize = k * n;
    const cSize = m * n;
    for (let i = 0; i < batch; i++) {
      gemm.sgemm(
        transposeA,
        transposeB,
        m,
        n,
        k,
        av.subarray(ia[i] * aSize, (ia[i] + 1) * aSize),
        bv.subarray(ib[i] * bSize, (ib[i] + 1) * bSize),
        cv.subarray(i * cSize, (i + 1) * cSize),
      );
    }
  }
}
