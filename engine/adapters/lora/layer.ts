import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';

export interface LoraLayerSettings {
  r: number;
  alpha: number;
  /** alpha / r, or alpha / √r with rsLoRA. */
  scaling: number;
  dropout: number;
  useDora: boolean;
  loraBias: boolean;
}

export interface LoraFactors {
  /** Linear/Conv1D: lora_A (r × in). Embedding: lora_embedding_A (r × num_embeddings). */
  a: tf.Tensor2D;
  /** Linear/Conv1D: lora_B (out × r). Embedding: lora_embedding_B (embedding_dim × r). */
  b: tf.Tensor2D;
  /** lora_B.bias (out), only with loraBias. */
  bias: tf.Tensor1D | null;
}

/** Blocks the gradient (PyTorch's `.detach()`): DoRA's weight norm is a constant for backprop. */
const detach = tf.customGrad((x) => ({
  value: (x as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/**
 * One LoRA adapter at one module (PEFT's `lora.Linear` / `lora.Embedding`, with the DoRA variant).
 * Tensors keep PEFT's shapes; GPT-2 Conv1D uses the same A/B as Linear (fan_in_fan_out only matters for the
 * stored base weight, which `AdaptableLayer.logicalWeight` already transposes).
 */
export class LoraLayer implements AdapterLayer {
  readonly a: tf.Variable<tf.Rank.R2>;
  readonly b: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1> | null;
  /** DoRA's lora_magnitude_vector: one entry per output feature (Embedding: per embedding dimension). */
  readonly magnitude: tf.Variable<tf.Rank.R1> | null;
  /** DoRA weight norm cached at merge time, so unmerge inverts exactly what merge did. */
  private mergedNorm: tf.Tensor1D | null = null;
  /** PiSSA/OLoRA: the initial factors whose product was taken out of the base weight. */
  private initialDelta: { a: tf.Tensor2D; b: tf.Tensor2D } | null = null;

  /** Takes ownership of `factors` (they are disposed once copied into variables). */
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly settings: LoraLayerSettings,
    factors: LoraFactors,
  ) {
    this.a = tf.variable(factors.a, true);
    this.b = tf.variable(factors.b, true);
    this.bias = factors.bias ? tf.variable(factors.bias, true) : null;
    factors.a.dispose();
    factors.b.dispose();
    factors.bias?.dispose();
    if (settings.useDora) {
      // PEFT initialises m = ‖W' + s·B·A‖ (the row norms of W' when B = 0): DoRA starts as a no-op too.
      const norm = tf.tidy(() => this.weightNorm());
      this.magnitude = tf.variable(norm, true);
      norm.dispose();
    } else {
      this.magnitude = null;
    }
  }

  get isEmbedding(): boolean {
    return this.base.kind === 'Embedding';
  }

  /** ΔW of the plain low-rank part in logical orientation: s·B·A (Embedding: s·(B·A)ᵀ). */
  private loraDelta(): tf.Tensor2D {
    const { scaling } = this.settings;
    return tf.tidy(() =>
      this.isEmbedding
        ? tf.mul(tf.matMul(this.a, this.b, true, true), scaling)
        : tf.mul(tf.matMul(this.b, this.a), scaling),
    ) as tf.Tensor2D;
  }

  /** The norm axis of the logical weight: per output row (Linear), per embedding column (Embedding). */
  private get normAxis(): number {
    return this.isEmbedding ? 0 : 1;
  }

  /** ‖W' + s·B·A‖ per output feature, on the unmerged base weight. */
  private weightNorm(): tf.Tensor1D {
    return tf.tidy(
      () => tf.norm(tf.add(this.unmergedBase(), this.loraDelta()), 'euclidean', this.normAxis) as tf.Tensor1D,
    );
  }

  /** The base weight without this adapter (recovered from the merged weight when this adapter is merged). */
  private unmergedBase(): tf.Tensor2D {
    const w = this.base.logicalWeight();
    if (!this.base.merged.includes(this.adapterName)) return w;
    return tf.tidy(() => this.unmergeFrom(w));
  }

  /** DoRA's m / ‖W' + s·B·A‖ as a broadcastable factor over the logical weight or the output rows. */
  private doraScale(norm: tf.Tensor1D): tf.Tensor2D {
    const k = tf.div(this.magnitude!, norm) as tf.Tensor1D;
    return (this.isEmbedding ? tf.reshape(k, [1, -1]) : tf.reshape(k, [-1, 1])) as tf.Tensor2D;
  }

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const { scaling, dropout: p } = this.settings;
      const xd = dropout(x, p, ctx);
      let lora = tf.matMul(tf.matMul(xd, this.a, false, true), this.b, false, true) as tf.Tensor2D;
      if (this.bias) lora = tf.add(lora, this.bias);
      lora = tf.mul(lora, scaling);
      if (!this.magnitude) return tf.add(base, lora);
      // PEFT's DoraLinearVariant: y = result + (k − 1)·base_nb + k·s·B·A·x_d with k = m / ‖W' + s·B·A‖ (detached).
      const k = tf.reshape(tf.div(this.magnitude, detach(this.weightNorm()) as tf.Tensor1D), [1, -1]);
      let baseNoBias: tf.Tensor2D;
      if (ctx.training && p > 0) {
        baseNoBias = this.base.weight.matmul(xd, this.base.kind === 'Linear');
      } else {
        baseNoBias = this.base.bias ? tf.sub(base, this.base.bias) : base;
      }
      return tf.add(base, tf.add(tf.mul(tf.sub(k, 1), baseNoBias), tf.mul(k, lora)));
    });
  }

  embed(ids: tf.Tensor1D, base: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    // PEFT applies no dropout to embedding LoRA.
    return tf.tidy(() => {
      const rows = tf.transpose(tf.gather(this.a, ids, 1)) as tf.Tensor2D;
      const lora = tf.mul(tf.matMul(rows, this.b, false, true), this.settings.scaling) as tf.Tensor2D;
      if (!this.magnitude) return tf.add(base, lora);
      const k = tf.reshape(tf.div(this.magnitude, detach(this.weightNorm()) as tf.Tensor1D), [1, -1]);
      return tf.mul(k, tf.add(base, lora));
    });
  }

  deltaWeight(): tf.Tensor2D {
    if (!this.magnitude) return this.loraDelta();
    return tf.tidy(() => {
      const w = this.unmergedBase();
      const adapted = tf.add(w, this.loraDelta());
      const scale = this.doraScale(tf.norm(adapted, 'euclidean', this.normAxis) as tf.Tensor1D);
      return tf.sub(tf.mul(scale, adapted), w);
    });
  }

  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } | null {
    if (this.magnitude) return null;
    const { scaling } = this.settings;
    return tf.tidy(() =>
      this.isEmbedding
        ? {
            left: tf.transpose(this.a) as tf.Tensor2D,
            right: tf.mul(tf.transpose(this.b), scaling) as tf.Tensor2D,
          }
        : { left: tf.mul(this.b, scaling) as tf.Tensor2D, right: this.a.clone() as tf.Tensor2D },
    );
  }

  mergeInto(w: tf.Tensor2D): tf.Tensor2D {
    const adapted = tf.add(w, this.loraDelta());
    if (this.bias) this.shiftBaseBias(1);
    if (!this.magnitude) return adapted as tf.Tensor2D;
    this.mergedNorm?.dispose();
    this.mergedNorm = tf.keep(tf.norm(adapted, 'euclidean', this.normAxis) as tf.Tensor1D);
    return tf.mul(this.doraScale(this.mergedNorm), adapted);
  }

  unmergeFrom(merged: tf.Tensor2D): tf.Tensor2D {
    if (this.bias && this.base.merged.includes(this.adapterName)) this.shiftBaseBias(-1);
    if (!this.magnitude) return tf.sub(merged, this.loraDelta());
    if (!this.mergedNorm)
      throw new Error(`DoRA adapter "${this.adapterName}" on ${this.base.name} is not merged`);
    return tf.sub(tf.div(merged, this.doraScale(this.mergedNorm)), this.loraDelta());
  }

  /** Merging lora_bias adds s·b_B to the base bias (PEFT raises when the base layer has none). */
  private shiftBaseBias(sign: 1 | -1): void {
    const old = this.base.bias;
    if (!old) throw new Error(`cannot merge loraBias into ${this.base.name}: the base layer has no bias`);
    this.base.bias = tf.keep(tf.add(old, tf.mul(this.bias!, sign * this.settings.scaling)) as tf.Tensor1D);
    old.dispose();
  }

  /** Records the PiSSA/OLoRA initial factors (kept) so `restoreBase` can put s·B₀·A₀ back. */
  setInitialDelta(a: tf.Tensor2D, b: tf.Tensor2D): void {
    this.initialDelta = { a: tf.keep(a.clone()), b: tf.keep(b.clone()) };
  }

  /** The initial PiSSA/OLoRA factors, or null for other inits. */
  get initialFactors(): { a: tf.Tensor2D; b: tf.Tensor2D } | null {
    return this.initialDelta;
  }

  /** Adds s·B₀·A₀ back into the base weight (undoes the PiSSA/OLoRA residual). */
  restoreBase(): void {
    if (!this.initialDelta) return;
    const { a, b } = this.initialDelta;
    const restored = tf.tidy(() =>
      tf.add(this.base.logicalWeight(), tf.mul(tf.matMul(b, a), this.settings.scaling)),
    );
    this.base.setLogicalWeight(restored as tf.Tensor2D);
  }

  /** Frees the layer's caches; its variables belong to the adapter instance, which disposes them. */
  disposeCaches(): void {
    this.mergedNorm?.dispose();
    this.initialDelta?.a.dispose();
    this.initialDelta?.b.dispose();
    this.mergedNorm = null;
    this.initialDelta = null;
  }
}
