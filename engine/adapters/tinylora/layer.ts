import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';
import { addShapes } from '../../models/ops.ts';

/**
 * One TinyLoRA adapter at one module (PEFT's `tinylora.Linear` / `tinylora.Embedding`): frozen SVD factors
 * A (r × cols) and B (rows × r) of the logical base weight, frozen projections P (u × r × r), and a trainable
 * v (u) that may be shared with other modules. ΔW = B·R·A with R = Σᵢ vᵢ·Pᵢ; no scaling.
 */
export class TinyloraLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly a: tf.Variable<tf.Rank.R2>,
    readonly b: tf.Variable<tf.Rank.R2>,
    readonly p: tf.Variable<tf.Rank.R3>,
    /** The module's (possibly tied) trainable vector. */
    readonly v: tf.Variable<tf.Rank.R1>,
    readonly group: number,
    readonly dropoutRate: number,
  ) {}

  /** R = einsum("i,ijk->jk", v, P), shape (r × r). */
  core(): tf.Tensor2D {
    return tf.tidy(() => {
      const [u, r] = this.p.shape;
      return tf.reshape(tf.matMul(tf.reshape(this.v, [1, u]), tf.reshape(this.p, [u, r * r])), [r, r]);
    });
  }

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const xd = dropout(x, this.dropoutRate, ctx);
      // x·Aᵀ·Rᵀ·Bᵀ, as F.linear(F.linear(F.linear(drop(x), A), R), B).
      const h = tf.matMul(tf.matMul(xd, this.a, false, true), this.core(), false, true);
      return addShapes(base, tf.matMul(h, this.b, false, true) as tf.Tensor2D);
    });
  }

  embed(ids: tf.Tensor1D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      // PEFT drops the looked-up rows of B (the input is ids).
      const rows = dropout(tf.gather(this.b, ids) as tf.Tensor2D, this.dropoutRate, ctx);
      return tf.add(base, tf.matMul(tf.matMul(rows, this.core()), this.a)) as tf.Tensor2D;
    });
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => tf.matMul(tf.matMul(this.b, this.core()), this.a));
  }

  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } {
    return tf.tidy(() => ({ left: tf.matMul(this.b, this.core()), right: this.a.clone() as tf.Tensor2D }));
  }
}
