import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from '../../models/layers.ts';
import type { TargetModule, TensorCount } from '../types.ts';
import type { LoraVariant, LoraVariantHost, LoraVariantLayer } from './variants.ts';

/** DoRA's trainable magnitude, as PEFT names it in files. */
export const DORA_MAGNITUDE = 'lora_magnitude_vector';

/** Blocks the gradient (PyTorch's `.detach()`): DoRA's weight norm is a constant for backprop. */
const detach = tf.customGrad((x) => ({
  value: (x as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/**
 * DoRA at one module (PEFT's `DoraLinearVariant` / `DoraEmbeddingVariant`): a trainable magnitude m per output
 * feature (Embedding: per embedding dimension) rescales the adapted weight, W_new = m / ‖W' + s·B·A‖ ⊙ (W' + s·B·A).
 */
export class DoraLayer implements LoraVariantLayer {
  readonly magnitude: tf.Variable<tf.Rank.R1>;
  readonly tensors: LoraVariantLayer['tensors'];
  /** The weight norm cached at merge time, so unmerge inverts exactly what merge did. */
  private mergedNorm: tf.Tensor1D | null = null;

  constructor(private readonly layer: LoraVariantHost) {
    // PEFT initialises m = ‖W' + s·B·A‖ (the row norms of W' when B = 0): DoRA starts as a no-op too.
    const norm = tf.tidy(() => this.weightNorm());
    this.magnitude = tf.variable(norm, true);
    norm.dispose();
    this.tensors = [{ suffix: DORA_MAGNITUDE, variable: this.magnitude, trainable: true }];
  }

  /** The norm axis of the logical weight: per output row (Linear), per embedding column (Embedding). */
  private get normAxis(): number {
    return this.layer.isEmbedding ? 0 : 1;
  }

  /** The base weight without this adapter (recovered from the merged weight when this adapter is merged). */
  private unmergedBase(): tf.Tensor2D {
    const { base, adapterName } = this.layer;
    const w = base.logicalWeight();
    if (!base.merged.includes(adapterName)) return w;
    return tf.tidy(() => this.unmerge(w));
  }

  /** ‖W' + s·B·A‖ per output feature, on the unmerged base weight. */
  private weightNorm(): tf.Tensor1D {
    return tf.tidy(
      () =>
        tf.norm(
          tf.add(this.unmergedBase(), this.layer.loraDelta()),
          'euclidean',
          this.normAxis,
        ) as tf.Tensor1D,
    );
  }

  /** m / norm as a factor broadcast over the logical weight's output features. */
  private scale(norm: tf.Tensor1D): tf.Tensor2D {
    const k = tf.div(this.magnitude, norm) as tf.Tensor1D;
    return (this.layer.isEmbedding ? tf.reshape(k, [1, -1]) : tf.reshape(k, [-1, 1])) as tf.Tensor2D;
  }

  /** k = m / ‖W' + s·B·A‖ (detached) as a row over the output features. */
  private outputScale(): tf.Tensor2D {
    return tf.reshape(tf.div(this.magnitude, detach(this.weightNorm()) as tf.Tensor1D), [1, -1]);
  }

  forward(xd: tf.Tensor2D, base: tf.Tensor2D, lora: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    // PEFT: y = result + (k − 1)·base_nb + k·s·B·A·x_d, where base_nb is the base output without bias, recomputed
    // on the dropped-out input while dropout is active.
    const k = this.outputScale();
    const { base: layer, settings } = this.layer;
    let baseNoBias: tf.Tensor2D;
    if (ctx.training && settings.dropout > 0) {
      baseNoBias = layer.weight.matmul(xd, layer.kind === 'Linear');
    } else {
      baseNoBias = layer.bias ? tf.sub(base, layer.bias) : base;
    }
    return tf.add(base, tf.add(tf.mul(tf.sub(k, 1), baseNoBias), tf.mul(k, lora)));
  }

  embed(base: tf.Tensor2D, lora: tf.Tensor2D): tf.Tensor2D {
    return tf.mul(this.outputScale(), tf.add(base, lora));
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.unmergedBase();
      const adapted = tf.add(w, this.layer.loraDelta());
      const scale = this.scale(tf.norm(adapted, 'euclidean', this.normAxis) as tf.Tensor1D);
      return tf.sub(tf.mul(scale, adapted), w);
    });
  }

  lowRankFactors(): null {
    return null;
  }

  merge(w: tf.Tensor2D): tf.Tensor2D {
    const adapted = tf.add(w, this.layer.loraDelta()) as tf.Tensor2D;
    this.mergedNorm?.dispose();
    this.mergedNorm = tf.keep(tf.norm(adapted, 'euclidean', this.normAxis) as tf.Tensor1D);
    return tf.mul(this.scale(this.mergedNorm), adapted);
  }

  unmerge(merged: tf.Tensor2D): tf.Tensor2D {
    if (!this.mergedNorm) {
      throw new Error(`DoRA adapter "${this.layer.adapterName}" on ${this.layer.base.name} is not merged`);
    }
    return tf.sub(tf.div(merged, this.scale(this.mergedNorm)), this.layer.loraDelta());
  }

  dispose(): void {
    this.mergedNorm?.dispose();
    this.mergedNorm = null;
  }
}

export const dora: LoraVariant = {
  peftField: 'use_dora',
  count(target: TargetModule): TensorCount[] {
    return [{ name: DORA_MAGNITUDE, shape: [target.outFeatures], trainable: true }];
  },
  init: (layer) => new DoraLayer(layer),
};
