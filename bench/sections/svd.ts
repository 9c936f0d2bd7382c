import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../engine/backends/index.ts';
import { truncatedSvd } from '../../engine/linalg/index.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

/**
 * Truncated SVD of weight-sized matrices (TinyLoRA and LoRA-XS factors, PiSSA): block subspace iteration
 * with its products on the selected backend. The matrices have a power-law spectrum (σᵢ ∝ i^−0.6 over 256
 * directions plus noise), like trained attention weights, which is what sets the iteration count.
 */
function weightLike(m: number, n: number): tf.Tensor2D {
  return tf.tidy(() => {
    const k = 256;
    const s = tf.pow(tf.range(1, k + 1), -0.6);
    const left = tf.mul(tf.randomNormal([m, k], 0, 1 / Math.sqrt(m), 'float32', 1), s);
    const product = tf.matMul(left, tf.randomNormal([k, n], 0, 1 / Math.sqrt(n), 'float32', 2));
    return tf.add(product, tf.randomNormal([m, n], 0, 0.002, 'float32', 3)) as tf.Tensor2D;
  });
}

export const section: BenchSection = {
  name: 'svd',
  title: 'Truncated SVD of weight-sized matrices',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const report = await selectBackend();
    const backend = report.matmul ? `${report.chosen}/${report.matmul}` : report.chosen;
    const cases: [number, number, number][] = ctx.quick
      ? [
          [768, 768, 2],
          [1024, 1024, 32],
        ]
      : [
          [1024, 1024, 32],
          [3072, 3072, 2],
          [1024, 3072, 32],
        ];
    const rows: BenchRow[] = [];
    for (const [m, n, r] of cases) {
      const w = weightLike(m, n);
      ctx.log(`svd: ${m}×${n} rank ${r} on ${backend}`);
      const t0 = performance.now();
      const result = truncatedSvd(w, r);
      const seconds = (performance.now() - t0) / 1000;
      w.dispose();
      rows.push({
        name: `${m}×${n} top ${r}`,
        config: `${backend}/${result.method}`,
        value: Number(seconds.toFixed(2)),
        unit: 's',
        details: { iterations: result.iterations, residual: result.residual, converged: result.converged },
      });
    }
    return rows;
  },
};
