import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';
import { addShapes } from '../../models/ops.ts';

/**
 * One TLoRA adapter at one module: y = base + Dropout(α·x·A·B·C) with A (in × r) and C (r × out) frozen
 * random, B (r × r) and the scalar α trainable. In PyTorch's (out × in) orientation ΔW = α·(A·B·C)ᵀ.
 */
export class TloraLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly randomA: tf.Variable<tf.Rank.R2>,
    readonly loraB: tf.Variable<tf.Rank.R2>,
    readonly randomC: tf.Variable<tf.Rank.R2>,
    /** α, shape [1] as the reference's `lora_scaling`. */
    readonly scaling: tf.Variable<tf.Rank.R1>,
    readonly dropoutRate: number,
  ) {}

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      // α applied at rank r, where the tensor its gradient keeps is small
      const h = tf.matMul(
        tf.mul(tf.matMul(tf.matMul(x, this.randomA), this.loraB), this.scaling),
        this.randomC,
      );
      // The reference drops the scaled adapter output, not the input.
      return addShapes(base, dropout(h as tf.Tensor2D, this.dropoutRate, ctx));
    });
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() =>
      tf.mul(tf.transpose(tf.matMul(tf.matMul(this.randomA, this.loraB), this.randomC)), this.scaling),
    ) as tf.Tensor2D;
  }

  /** ΔW = (α·Cᵀ·Bᵀ)·Aᵀ: the LoRA conversion lora_B = α·Cᵀ·Bᵀ (out × r), lora_A = Aᵀ (r × in), scaling 1. */
  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } {
    return tf.tidy(() => ({
      left: tf.mul(tf.matMul(this.randomC, this.loraB, true, true), this.scaling) as tf.Tensor2D,
      right: tf.transpose(this.randomA) as tf.Tensor2D,
    }));
  }
}
