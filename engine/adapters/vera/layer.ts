import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';
import { addShapes } from '../../models/ops.ts';

/**
 * One VeRA adapter at one module (PEFT's `vera.Linear`): slices A_s = vera_A[:, :in], B_s = vera_B[:out, :]
 * of the shared frozen projections and trainable λ_d (r), λ_b (out).
 * y = base + λ_b ⊙ ((λ_d ⊙ (drop(x)·A_sᵀ))·B_sᵀ); ΔW = diag(λ_b)·B_s·diag(λ_d)·A_s; no scaling.
 */
export class VeraLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly veraA: tf.Variable<tf.Rank.R2>,
    readonly veraB: tf.Variable<tf.Rank.R2>,
    readonly lambdaD: tf.Variable<tf.Rank.R1>,
    readonly lambdaB: tf.Variable<tf.Rank.R1>,
    readonly dropoutRate: number,
  ) {}

  private slices(): { a: tf.Tensor2D; b: tf.Tensor2D } {
    const r = this.veraA.shape[0];
    return {
      a: tf.slice(this.veraA, [0, 0], [r, this.base.inFeatures]),
      b: tf.slice(this.veraB, [0, 0], [this.base.outFeatures, r]),
    };
  }

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const { a, b } = this.slices();
      const h = tf.mul(tf.matMul(dropout(x, this.dropoutRate, ctx), a, false, true), this.lambdaD);
      // (h·bᵀ)·Λ_b as h·(Λ_b·b)ᵀ: λ_b scales rows of the [out, r] slice, so its gradient keeps no [N, out] tensor
      const scaled = tf.mul(b, tf.reshape(this.lambdaB, [-1, 1]));
      return addShapes(base, tf.matMul(h, scaled, false, true) as tf.Tensor2D);
    });
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => {
      const { left, right } = this.lowRankFactors();
      return tf.matMul(left, right);
    });
  }

  /** left = diag(λ_b)·B_s·diag(λ_d) (out × r), right = A_s (r × in). */
  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } {
    return tf.tidy(() => {
      const { a, b } = this.slices();
      const left = tf.mul(tf.mul(b, tf.reshape(this.lambdaB, [-1, 1])), tf.reshape(this.lambdaD, [1, -1]));
      return { left: left as tf.Tensor2D, right: a };
    });
  }
}
