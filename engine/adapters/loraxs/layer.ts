import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';
import { addShapes } from '../../models/ops.ts';

/**
 * One LoRA-XS adapter at one module: frozen A = S·Vᵀ (r × in) and B = U (out × r) from the truncated SVD of
 * the base weight, trainable R (r × r). y = base + s·B(R(A(drop(x)))) with s = alpha / r; ΔW = s·B·R·A.
 */
export class LoraxsLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly a: tf.Variable<tf.Rank.R2>,
    readonly b: tf.Variable<tf.Rank.R2>,
    readonly core: tf.Variable<tf.Rank.R2>,
    readonly scaling: number,
    readonly dropoutRate: number,
  ) {}

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const xd = dropout(x, this.dropoutRate, ctx);
      const h = tf.matMul(tf.matMul(xd, this.a, false, true), this.core, false, true);
      return addShapes(base, tf.matMul(tf.mul(h, this.scaling), this.b, false, true) as tf.Tensor2D);
    });
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.matMul(tf.matMul(this.b, this.core), this.a), this.scaling),
    ) as tf.Tensor2D;
  }

  /** LoRA conversion: lora_B = s·B (out × r), lora_A = R·A (r × in), scaling 1. */
  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } {
    return tf.tidy(() => ({
      left: tf.mul(this.b, this.scaling) as tf.Tensor2D,
      right: tf.matMul(this.core, this.a),
    }));
  }
}
