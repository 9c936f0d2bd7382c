import * as tf from '@tensorflow/tfjs-core';
import { type AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../../models/layers.ts';
import { addShapes, customOp } from '../../models/ops.ts';
import type { LoraVariant, LoraVariantHost, LoraVariantLayer } from './variants.ts';

export interface LoraLayerSettings {
  r: number;
  alpha: number;
  /** alpha / r, or alpha / √r with rsLoRA. */
  scaling: number;
  dropout: number;
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

/**
 * One LoRA adapter at one module (PEFT's `lora.Linear` / `lora.Embedding`), optionally with a variant (DoRA)
 * that replaces its forward, ΔW and merge as PEFT's `LoraVariant` does. Tensors keep PEFT's shapes; GPT-2
 * Conv1D uses the same A/B as Linear (fan_in_fan_out only matters for the stored base weight, which
 * `AdaptableLayer.logicalWeight` already transposes).
 */
export class LoraLayer implements AdapterLayer, LoraVariantHost {
  readonly a: tf.Variable<tf.Rank.R2>;
  readonly b: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1> | null;
  readonly variant: LoraVariantLayer | null;
  /** PiSSA/OLoRA: the initial factors whose product was taken out of the base weight. */
  private initialDelta: { a: tf.Tensor2D; b: tf.Tensor2D } | null = null;

  /** Takes ownership of `factors` (they are disposed once copied into variables). */
  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
    readonly settings: LoraLayerSettings,
    factors: LoraFactors,
    variant: LoraVariant | null = null,
  ) {
    this.a = tf.variable(factors.a, true);
    this.b = tf.variable(factors.b, true);
    this.bias = factors.bias ? tf.variable(factors.bias, true) : null;
    factors.a.dispose();
    factors.b.dispose();
    factors.bias?.dispose();
    this.variant = variant ? variant.init(this) : null;
  }

  get isEmbedding(): boolean {
    return this.base.kind === 'Embedding';
  }

  loraDelta(): tf.Tensor2D {
    const { scaling } = this.settings;
    return tf.tidy(() =>
      this.isEmbedding
        ? tf.mul(tf.matMul(this.a, this.b, true, true), scaling)
        : tf.mul(tf.matMul(this.b, this.a), scaling),
    ) as tf.Tensor2D;
  }

  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const xd = dropout(x, this.settings.dropout, ctx);
      const { scaling } = this.settings;
      // scaled at rank r and summed with addShapes: a scaled or summed [N, out] operand would be kept for the
      // backward pass (tfjs' Mul and Add save theirs), three per adapted module
      const h = tf.mul(tf.matMul(xd, this.a, false, true), scaling);
      let lora = tf.matMul(h, this.b, false, true) as tf.Tensor2D;
      if (this.bias) lora = addShapes(lora, tf.mul(this.bias, scaling));
      return this.variant ? this.variant.forward(xd, base, lora, ctx) : addShapes(base, lora);
    });
  }

  /**
   * y = x·Wᵀ (+ bias) + s·(x·Aᵀ)·Bᵀ as one op whose backward gives dx = dy·W + s·(dy·B)·A from one base
   * product: the LoRA term is the frozen product's addend both ways, which the bf16 kernel sums in its first pass.
   * Composed, each adapted module added [N, out] forward and [N, in] backward: 0.75 ms a call at 256 × 3072, about
   * 0.4 s of a 3B step. It keeps x and h = s·x·Aᵀ [N, r], as the composed ops did.
   */
  adaptedForward(
    x: tf.Tensor2D,
    module: AdaptableLayer,
    ctx: ForwardContext,
    valueUnread = false,
  ): tf.Tensor2D | null {
    if (this.variant || this.bias || this.isEmbedding || (ctx.training && this.settings.dropout > 0))
      return null;
    const { scaling } = this.settings;
    const { weight, bias } = module;
    const transposeWeight = module.kind === 'Linear';
    const op = customOp(([input, a, b], save) => {
      const h = tf.mul(tf.matMul(input, a, false, true), scaling) as tf.Tensor2D;
      const term = tf.matMul(h, b, false, true) as tf.Tensor2D;
      // an unread value (a recomputed block's output) needs no base product: the gradients below never read it
      const value = valueUnread ? term : weight.matmul(input as tf.Tensor2D, transposeWeight, bias, term);
      save([input, a, b, h]);
      return {
        value,
        gradFunc: (dy, [xs, as, bs, hs]) => {
          const dh = tf.mul(tf.matMul(dy, bs), scaling) as tf.Tensor2D;
          const dx = weight.matmul(
            dy as tf.Tensor2D,
            !transposeWeight,
            null,
            tf.matMul(dh, as) as tf.Tensor2D,
          );
          return [dx, tf.matMul(dh, xs, true, false), tf.matMul(dy, hs, true, false)];
        },
      };
    });
    return op(x, this.a, this.b) as tf.Tensor2D;
  }

  embed(ids: tf.Tensor1D, base: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    // PEFT applies no dropout to embedding LoRA.
    return tf.tidy(() => {
      const rows = tf.transpose(tf.gather(this.a, ids, 1)) as tf.Tensor2D;
      const lora = tf.mul(tf.matMul(rows, this.b, false, true), this.settings.scaling) as tf.Tensor2D;
      return this.variant ? this.variant.embed(base, lora) : tf.add(base, lora);
    });
  }

  deltaWeight(): tf.Tensor2D {
    return this.variant ? this.variant.deltaWeight() : this.loraDelta();
  }

  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } | null {
    if (this.variant) return this.variant.lowRankFactors();
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
    if (this.bias) this.shiftBaseBias(1);
    return this.variant ? this.variant.merge(w) : (tf.add(w, this.loraDelta()) as tf.Tensor2D);
  }

  unmergeFrom(merged: tf.Tensor2D): tf.Tensor2D {
    if (this.bias && this.base.merged.includes(this.adapterName)) this.shiftBaseBias(-1);
    return this.variant ? this.variant.unmerge(merged) : tf.sub(merged, this.loraDelta());
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
    this.variant?.dispose();
    this.initialDelta?.a.dispose();
    this.initialDelta?.b.dispose();
    this.initialDelta = null;
  }
}
