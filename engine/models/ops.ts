import * as tf from '@tensorflow/tfjs-core';
import { fusedOps } from '../backends/fused.ts';

/** Added to attention scores of masked keys; finite so fully masked (padding) rows stay NaN-free. */
export const MASKED_SCORE = -1e9;

/**
 * A custom-gradient op over tensor inputs; `f` receives the inputs and the engine's save function. The
 * backward runs in a tidy: tfjs runs custom gradients outside any scope, so their intermediates would
 * otherwise live until the whole backward pass ends.
 */
export function customOp(
  f: (
    inputs: tf.Tensor[],
    save: tf.GradSaveFunc,
  ) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const { value, gradFunc } = f(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc);
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => gradFunc(dy, saved)) };
  }) as Parameters<typeof tf.customGrad>[0]);
  return (...inputs) => op(...inputs);
}

/** dy summed down to `shape` (the gradient of a broadcast operand). */
function reduceTo(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, dy.shape);
  // a fresh tensor even without reduction: the engine disposes each input's gradient on its own
  return tf.reshape(axes.length > 0 ? tf.sum(dy, axes) : dy, shape);
}

/**
 * a + b (broadcasting) whose gradient keeps nothing alive: tfjs' Add saves both operands for their shapes,
 * which pins every residual-stream and bias input until the backward pass.
 */
export function addShapes<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  const aShape = a.shape;
  const bShape = b.shape;
  const op = customOp(([x, y]) => ({
    value: tf.add(x, y),
    gradFunc: (dy: tf.Tensor) => [reduceTo(dy, aShape), reduceTo(dy, bShape)],
  }));
  return op(a, b) as T;
}

/**
 * LayerNorm over the last axis of x [N, d]. The gradient saves x and 1/σ [N, 1] only (autodiff of the
 * composed ops kept five [N, d] intermediates).
 */
export function layerNorm(x: tf.Tensor2D, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D {
  const fused = fusedOps();
  if (fused) return fused.layerNorm(x, weight, bias, eps);
  const op = customOp(([input, w, b], save) => {
    const mean = tf.mean(input, -1, true);
    const centered = tf.sub(input, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps));
    save([input, rstd]);
    return {
      value: tf.add(tf.mul(tf.mul(centered, rstd), w), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, r] = saved;
        const xhat = tf.mul(tf.sub(xs, tf.mean(xs, -1, true)), r);
        const g = tf.mul(dy, w);
        const dx = tf.mul(
          tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))),
          r,
        );
        return [dx, tf.sum(tf.mul(dy, xhat), 0), tf.sum(dy, 0)];
      },
    };
  });
  return tf.tidy(() => op(x, weight, bias) as tf.Tensor2D);
}

/** RMSNorm (Llama): x / sqrt(mean(x²) + eps) · weight. The gradient saves x, 1/rms [N, 1] and the weight. */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  const fused = fusedOps();
  if (fused) return fused.rmsNorm(x, weight, eps);
  const op = customOp(([input, w], save) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(input), -1, true), eps));
    // w is saved too: a weight computed in the forward pass (Gemma's 1 + w) is gone by the backward pass
    save([input, r, w]);
    return {
      value: tf.mul(tf.mul(input, r), w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, rs, ws] = saved;
        const xhat = tf.mul(xs, rs);
        const g = tf.mul(dy, ws);
        const dx = tf.mul(tf.sub(g, tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))), rs);
        return [dx, tf.sum(tf.mul(dy, xhat), 0)];
      },
    };
  });
  return tf.tidy(() => op(x, weight) as tf.Tensor2D);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * An elementwise activation whose gradient saves only its input (autodiff of the composed ops kept up to
 * eight intermediates of the MLP width per layer).
 */
function elementwise(name: string, f: (x: tf.Tensor) => tf.Tensor, df: (x: tf.Tensor) => tf.Tensor) {
  const op = customOp(([x], save) => {
    save([x]);
    return { value: f(x), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, df(saved[0])) };
  });
  return (x: tf.Tensor): tf.Tensor => fusedOps()?.activation(name, x) ?? tf.tidy(() => op(x) as tf.Tensor);
}

const GELU_CUBIC = 0.044715;

/** tanh(√(2/π)·(x + 0.044715x³)) of the tanh-approximated GELU. */
function geluTanhInner(x: tf.Tensor): tf.Tensor {
  return tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), GELU_CUBIC)), SQRT_2_OVER_PI));
}

/** Activations by their transformers names (`ACT2FN`). */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      // d/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
      return elementwise(
        name,
        (x) => tf.mul(tf.mul(x, 0.5), tf.add(geluTanhInner(x), 1)),
        (x) => {
          const t = geluTanhInner(x);
          const du = tf.mul(tf.add(tf.mul(tf.square(x), 3 * GELU_CUBIC), 1), SQRT_2_OVER_PI);
          return tf.add(
            tf.mul(tf.add(t, 1), 0.5),
            tf.mul(tf.mul(tf.mul(x, 0.5), tf.sub(1, tf.square(t))), du),
          );
        },
      );
    case 'gelu':
      // d/dx = Φ(x) + x·φ(x)
      return elementwise(
        name,
        (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)),
        (x) =>
          tf.add(
            tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5),
            tf.mul(x, tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), 1 / Math.sqrt(2 * Math.PI))),
          ),
      );
    case 'silu':
    case 'swish':
      // d/dx = σ(x)(1 + x(1 − σ(x)))
      return elementwise(
        name,
        (x) => tf.mul(x, tf.sigmoid(x)),
        (x) => {
          const s = tf.sigmoid(x);
          return tf.mul(s, tf.add(tf.mul(x, tf.sub(1, s)), 1));
        },
      );
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

/** act(gate)·up of gated MLPs (Llama's SwiGLU), one fused kernel where the backend has it. */
export function gatedActivation(name: string, gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  return fusedOps()?.gated(name, gate, up) ?? tf.tidy(() => tf.mul(activation(name)(gate), up));
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

/** The rows of each sequence's last position, [B, d], from rows [B·T, d] of a [B, T] batch. */
export function lastPositionRows(rows: tf.Tensor2D, batch: number, length: number): tf.Tensor2D {
  return tf.tidy(
    () =>
      tf.reshape(tf.slice(tf.reshape(rows, [batch, length, -1]), [0, length - 1, 0], [batch, 1, -1]), [
        batch,
        -1,
      ]) as tf.Tensor2D,
  );
}

/** [B, heads, T, dim] → [B·T, heads·dim]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [batch, heads, length, dim] = x.shape;
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch * length, heads * dim]) as tf.Tensor2D;
  });
}

/** Attention variants: the score scale (default 1/√head_dim) and Gemma 2's tanh soft-capping of the scores. */
export interface AttentionOptions {
  scale?: number;
  /** Scores become cap·tanh(scores / cap) before the bias (transformers' `attn_logit_softcapping`). */
  softcap?: number | null;
}

/**
 * Scaled dot-product attention of q [B,H,Tq,d] over k, v [B,H,Tk,d] with an additive bias [B,1,Tq,Tk].
 * scale·scores (soft-capped) + bias → softmax is one custom-gradient op that saves only the probabilities
 * (and the tanh when capping): autodiff kept the scaled, biased and normalised [B,H,Tq,Tk] scores of every
 * layer.
 */
export function attend(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D,
  opts: AttentionOptions = {},
): tf.Tensor4D {
  const fused = opts.softcap
    ? null
    : fusedOps()?.attention(q, k, v, bias, opts.scale ?? 1 / Math.sqrt(q.shape[3]));
  if (fused) return fused;
  const [batch, heads, queryLength, dim] = q.shape;
  const kvHeads = k.shape[1];
  if (heads !== kvHeads) {
    // grouped-query attention: the `repeats` consecutive query heads of one kv head attend as one taller
    // query block, so keys and values are never tiled (tiling and its gradient cost more than the products)
    const repeats = heads / kvHeads;
    return tf.tidy(() => {
      const grouped = tf.reshape(q, [batch, kvHeads, repeats * queryLength, dim]) as tf.Tensor4D;
      const groupedBias = tf.tile(bias, [1, 1, repeats, 1]) as tf.Tensor4D;
      return tf.reshape(attend(grouped, k, v, groupedBias, opts), [
        batch,
        heads,
        queryLength,
        dim,
      ]) as tf.Tensor4D;
    });
  }
  const scale = opts.scale ?? 1 / Math.sqrt(dim);
  const cap = opts.softcap ?? null;
  const probabilities = customOp(([scores], save) => {
    const scaled = tf.mul(scores, scale);
    const t = cap === null ? null : tf.tanh(tf.div(scaled, cap));
    const p = tf.softmax(tf.add(t === null || cap === null ? scaled : tf.mul(t, cap), bias));
    save(t === null ? [p] : [p, t]);
    return {
      value: p,
      gradFunc: (dp: tf.Tensor, saved: tf.Tensor[]) => {
        const [ps, ts] = saved;
        const dCapped = tf.mul(ps, tf.sub(dp, tf.sum(tf.mul(dp, ps), -1, true)));
        // d/ds cap·tanh(s / cap) = 1 − tanh²
        const dScaled = ts === undefined ? dCapped : tf.mul(dCapped, tf.sub(1, tf.square(ts)));
        return tf.mul(dScaled, scale);
      },
    };
  });
  return tf.tidy(() => tf.matMul(probabilities(tf.matMul(q, k, false, true)) as tf.Tensor, v) as tf.Tensor4D);
}

/**
 * Σ over rows of w·(−log softmax(logits)[target]) for logits [N, C], int32 targets [N] and weights [N]. The
 * gradient saves the logits and log-sum-exp [N] only; autodiff of logSumExp + gather kept several [N, C]
 * copies, the largest tensors of a language-model step.
 */
export function weightedTokenNll(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  const fused = fusedOps();
  if (fused) return fused.tokenNll(logits, targets, weights);
  const [n, c] = logits.shape;
  const op = customOp(([x], save) => {
    const lse = tf.logSumExp(x, 1);
    const flatIndex = tf.add(
      tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(c, 'int32')),
      tf.cast(targets, 'int32'),
    );
    const picked = tf.gather(tf.reshape(x, [n * c]), flatIndex);
    // targets and weights are saved too: tensors the caller made inside the taped function are gone by backward
    save([x, lse, targets, weights]);
    return {
      value: tf.sum(tf.mul(tf.sub(lse, picked), weights)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, lses, ids, w] = saved;
        // w·dy·(softmax − onehot), freeing each [N, C] step early: the backward peak is what hits the wasm heap
        const rowScale = tf.mul(w, dy);
        const shifted = tf.sub(xs, tf.reshape(lses, [n, 1]));
        const probs = tf.exp(shifted);
        shifted.dispose();
        const scaled = tf.mul(probs, tf.reshape(rowScale, [n, 1]));
        probs.dispose();
        const index = tf.add(
          tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(c, 'int32')),
          tf.cast(ids, 'int32'),
        );
        const hits = tf.scatterND(tf.reshape(index, [n, 1]), rowScale, [n * c]);
        const grad = tf.sub(scaled, tf.reshape(hits, [n, c]));
        scaled.dispose();
        hits.dispose();
        return grad;
      },
    };
  });
  return tf.tidy(() => op(logits) as tf.Scalar);
}
