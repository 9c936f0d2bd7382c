import * as tf from '@tensorflow/tfjs-core';
import { truncatedSvd } from '../../linalg/index.ts';
import type { AdaptableLayer } from '../../models/layers.ts';

/**
 * Frozen factors of the top-`rank` truncated SVD W' = U·S·Vᵀ of a layer's logical weight (rows × cols):
 * `sqrt` gives A = √S·Vᵀ, B = U·√S (TinyLoRA); `right` gives A = S·Vᵀ, B = U (LoRA-XS: singular values on
 * the A side). B·A is the best rank-`rank` approximation of W' either way. Signs follow `svd`'s convention.
 */
export function svdFactors(
  layer: AdaptableLayer,
  rank: number,
  split: 'sqrt' | 'right',
): { a: tf.Tensor2D; b: tf.Tensor2D } {
  const w = layer.logicalWeight();
  let result: ReturnType<typeof truncatedSvd>;
  try {
    result = truncatedSvd(w, rank, { seed: 0 });
  } finally {
    w.dispose();
  }
  const { u, s, v } = result;
  const rows = u.rows;
  const cols = v.rows;
  const aData = new Float32Array(rank * cols);
  const bData = new Float32Array(rows * rank);
  for (let k = 0; k < rank; k++) {
    const left = split === 'sqrt' ? Math.sqrt(s[k]) : 1;
    const right = split === 'sqrt' ? Math.sqrt(s[k]) : s[k];
    for (let j = 0; j < cols; j++) aData[k * cols + j] = right * v.data[j * rank + k];
    for (let i = 0; i < rows; i++) bData[i * rank + k] = u.data[i * rank + k] * left;
  }
  return { a: tf.tensor2d(aData, [rank, cols]), b: tf.tensor2d(bData, [rows, rank]) };
}
