import * as tf from '@tensorflow/tfjs-core';
import type { RopeScaling } from './config.ts';

/** Added to attention scores of masked keys; finite so fully masked (padding) rows stay NaN-free. */
export const MASKED_SCORE = -1e9;

/** LayerNorm over the last axis of x [N, d]. */
export function layerNorm(x: tf.Tensor2D, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), weight), bias) as tf.Tensor2D;
  });
}

/** RMSNorm (Llama): x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight) as tf.Tensor2D;
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Activations by their transformers names (`ACT2FN`). */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return (x) =>
        tf.tidy(() => {
          const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI);
          return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
        });
    case 'gelu':
      return (x) => tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
    case 'silu':
    case 'swish':
      return (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
    case 'relu':
      return (x) => tf.relu(x);
    case 'tanh':
      return (x) => tf.tanh(x);
    default:
      throw new Error(
        `activation "${name}" is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, silu, relu, tanh)`,
      );
  }
}

/**
 * Position ids from the attention mask, as transformers' `generate` builds them: cumsum(mask) − 1, so a
 * left-padded sequence gets the same positions as unpadded (padding positions clamp to 0; never attended).
 */
export function positionsFromMask(mask: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(
    () => tf.cast(tf.relu(tf.sub(tf.cumsum(tf.cast(mask, 'float32'), 1), 1)), 'int32') as tf.Tensor2D,
  );
}

/**
 * Additive attention bias [B, 1, Tq, Tk]: 0 where a query may attend a key, MASKED_SCORE elsewhere.
 * Causal masks let query i (at absolute position `offset + i`) see keys ≤ its position, within
 * `slidingWindow` when set; the key padding mask removes padded keys.
 */
export function attentionBias(
  keyMask: tf.Tensor2D,
  opts: { causal: boolean; queryLength?: number; slidingWindow?: number | null },
): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, keyLength] = keyMask.shape;
    const queryLength = opts.queryLength ?? keyLength;
    let allowed = tf.reshape(tf.cast(keyMask, 'float32'), [batch, 1, 1, keyLength]) as tf.Tensor4D;
    if (opts.causal) {
      const offset = keyLength - queryLength;
      const window = opts.slidingWindow ?? null;
      const causal = new Float32Array(queryLength * keyLength);
      for (let q = 0; q < queryLength; q++) {
        const pos = q + offset;
        for (let k = 0; k < keyLength; k++) {
          const visible = k <= pos && (window === null || k > pos - window);
          causal[q * keyLength + k] = visible ? 1 : 0;
        }
      }
      allowed = tf.mul(allowed, tf.tensor4d(causal, [1, 1, queryLength, keyLength]));
    }
    return tf.mul(tf.sub(1, allowed), MASKED_SCORE) as tf.Tensor4D;
  });
}

/** [N, heads·dim] rows of a [B, T] batch → [B, heads, T, dim]. */
export function splitHeads(x: tf.Tensor2D, batch: number, length: number, heads: number): tf.Tensor4D {
  return tf.tidy(() => {
    const dim = x.shape[1] / heads;
    return tf.transpose(tf.reshape(x, [batch, length, heads, dim]), [0, 2, 1, 3]) as tf.Tensor4D;
  });
}

/** [B, heads, T, dim] → [B·T, heads·dim]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [batch, heads, length, dim] = x.shape;
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch * length, heads * dim]) as tf.Tensor2D;
  });
}

/** Grouped-query attention: each of `kvHeads` heads serves `repeats` consecutive query heads. */
export function repeatKv(x: tf.Tensor4D, repeats: number): tf.Tensor4D {
  if (repeats === 1) return x;
  return tf.tidy(() => {
    const [batch, kvHeads, length, dim] = x.shape;
    // tiled as rank 3: tfjs has no gradient for tile above rank 4
    const expanded = tf.tile(tf.reshape(x, [batch * kvHeads, 1, length * dim]), [1, repeats, 1]);
    return tf.reshape(expanded, [batch, kvHeads * repeats, length, dim]) as tf.Tensor4D;
  });
}

/** Scaled dot-product attention of q [B,H,Tq,d] over k, v [B,H,Tk,d] with an additive bias [B,1,Tq,Tk]. */
export function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const scale = 1 / Math.sqrt(q.shape[3]);
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), scale), bias);
    return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D;
  });
}

/** RoPE inverse frequencies, with transformers' `linear` and `llama3` scalings. */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling): Float32Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  if (scaling.kind === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= scaling.factor;
  } else if (scaling.kind === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
    const lowFreqWavelen = originalMaxPositions / lowFreqFactor;
    const highFreqWavelen = originalMaxPositions / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowFreqWavelen) inv[i] /= factor;
      else if (wavelen >= highFreqWavelen) {
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = ((1 - smooth) * inv[i]) / factor + smooth * inv[i];
      }
    }
  }
  return Float32Array.from(inv);
}

/** cos and sin tables [B, 1, T, headDim] for position ids [B, T]. */
export function ropeTables(
  positions: tf.Tensor2D,
  invFreq: Float32Array,
): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  return tf.tidy(() => {
    const [batch, length] = positions.shape;
    const freqs = tf.mul(
      tf.reshape(tf.cast(positions, 'float32'), [batch, length, 1]),
      tf.reshape(tf.tensor1d(invFreq), [1, 1, invFreq.length]),
    );
    const emb = tf.reshape(tf.concat([freqs, freqs], 2), [batch, 1, length, 2 * invFreq.length]);
    return { cos: tf.cos(emb) as tf.Tensor4D, sin: tf.sin(emb) as tf.Tensor4D };
  });
}

/** x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] (transformers' non-interleaved RoPE). */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [x1, x2] = tf.split(x, 2, 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  });
}
