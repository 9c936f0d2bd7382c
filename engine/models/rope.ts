import * as tf from '@tensorflow/tfjs-core';
import { CONFIG_FILE, ModelError, num } from './config.ts';

/** RoPE settings of one layer type, normalised from config.json. */
export type Rope =
  | { type: 'default'; theta: number }
  | { type: 'linear'; theta: number; factor: number }
  | {
      type: 'llama3';
      theta: number;
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

/** Reads `rope_theta` / `rope_scaling`. */
export function ropeOf(config: Record<string, unknown>, defaultTheta: number): Rope {
  const theta = num(config, 'rope_theta', defaultTheta);
  const raw = config.rope_scaling;
  if (raw === undefined || raw === null) return { type: 'default', theta };
  if (typeof raw !== 'object') throw new ModelError(CONFIG_FILE, '"rope_scaling" must be an object or null');
  const scaling = raw as Record<string, unknown>;
  const kind = (scaling.rope_type ?? scaling.type) as string | undefined;
  if (kind === 'default') return { type: 'default', theta };
  const factor = num(scaling, 'factor');
  if (kind === 'linear') return { type: 'linear', theta, factor };
  if (kind === 'llama3') {
    return {
      type: 'llama3',
      theta,
      factor,
      lowFreqFactor: num(scaling, 'low_freq_factor'),
      highFreqFactor: num(scaling, 'high_freq_factor'),
      originalMaxPositions: num(scaling, 'original_max_position_embeddings'),
    };
  }
  throw new ModelError(
    CONFIG_FILE,
    `rope_scaling type "${kind}" is not supported (supported: none, linear, llama3)`,
  );
}

/** RoPE inverse frequencies, as transformers' `ROPE_INIT_FUNCTIONS` compute them. */
export function ropeInvFreq(headDim: number, rope: Rope): Float32Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / rope.theta ** ((2 * i) / headDim);
  if (rope.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= rope.factor;
  } else if (rope.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = rope;
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
export interface RopeTables {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
}

export function ropeTables(positions: tf.Tensor2D, invFreq: Float32Array): RopeTables {
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

/** rotate_half as a [dim, dim] matrix: x·R = [−x₂, x₁]. */
function rotateHalfMatrix(dim: number): tf.Tensor2D {
  const half = dim / 2;
  const r = new Float32Array(dim * dim);
  for (let i = 0; i < half; i++) {
    r[(i + half) * dim + i] = -1;
    r[i * dim + i + half] = 1;
  }
  return tf.tensor2d(r, [dim, dim]);
}

/**
 * x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] (transformers' non-interleaved RoPE). The
 * rotation is one product with a signed permutation matrix: wasm's split and concat along the last axis (and
 * their gradients) were the slowest kernels of a small Llama's step.
 */
export function applyRope(x: tf.Tensor4D, tables: RopeTables): tf.Tensor4D {
  return tf.tidy(() => {
    const dim = x.shape[3];
    const rows = tf.reshape(x, [-1, dim]) as tf.Tensor2D;
    const rotated = tf.reshape(tf.matMul(rows, rotateHalfMatrix(dim)), x.shape);
    return tf.add(tf.mul(x, tables.cos), tf.mul(rotated, tables.sin)) as tf.Tensor4D;
  });
}
