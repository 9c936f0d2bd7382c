import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';
import { addShapes } from '../../models/ops.ts';

/**
 * One MoSLoRA adapter at one module: LoRA's A (r × in) and B (out × r) with a trainable r × r mixer M between
 * them (the reference's `lora_AB`), all trainable. y = base + s·B(M(A(drop(x)))) with s = loraAlpha / r;
 * ΔW = s·B·M·A.
 */
export class MosloraLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly a: tf.Variable<tf.Rank.R2>,
    readonly mixer: tf.Variable<tf.Rank.R2>,
    readonly b: tf.Variable<tf.Rank.R2>,
    readonly scaling: number,
    readonly dropoutRate: number,
  ) {}

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const xd = dropout(x, this.dropoutRate, ctx);
      const h = tf.matMul(tf.matMul(xd, this.a, false, true), this.mixer, false, true);
      return addShapes(base, tf.matMul(tf.mul(h, this.scaling), this.b, false, true) as tf.Tensor2D);
    });
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.matMul(tf.matMul(this.b, this.mixer), this.a), this.scaling),
    ) as tf.Tensor2D;
  }

  /** LoRA conversion: lora_B = s·B·M (out × r), lora_A = A (r × in). */
  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } {
    return tf.tidy(() => ({
      left: tf.mul(tf.matMul(this.b, this.mixer), this.scaling) as tf.Tensor2D,
      right: this.a.clone() as tf.Tensor2D,
    }));
  }
}
