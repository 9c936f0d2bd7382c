import * as tf from '@tensorflow/tfjs-core';

/** AdamW hyper-parameters of one update, as `torch.optim.AdamW` applies them (see training/optimizer.ts). */
export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 − β1ᵗ and √(1 − β2ᵗ). */
  bias1: number;
  bias2Sqrt: number;
  /**
   * The gradient is used as g·gradScale: gradient accumulation's 1/tokens and the clipping factor, which as
   * ops of their own were two passes and two tensors a parameter a step (0.1 s of a 3B step's 392 parameters).
   */
  gradScale: number;
}

/**
 * Fused implementations of the training step's ops that a backend provides (native and webgpu do), each with its
 * gradient. Model and optimizer code asks `fusedOps()` and falls back to composed tfjs ops when it returns
 * null or a method returns null (a shape the fused kernel does not cover). Results match the composed ops.
 */
export interface FusedOps {
  /** softmax(q·kᵀ·scale + bias)·v for q [B,H,Tq,d], k/v [B,Hkv,Tk,d] (Hkv divides H), bias [B,1,Tq or 1,Tk]. */
  attention(
    q: tf.Tensor4D,
    k: tf.Tensor4D,
    v: tf.Tensor4D,
    bias: tf.Tensor4D,
    scale: number,
  ): tf.Tensor4D | null;
  rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D;
  layerNorm(x: tf.Tensor2D, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D;
  /** x·cos + rotate_half(x)·sin, cos/sin [B,1,T,d]. */
  rope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D;
  /** An activation by its transformers name, or null when not fused. */
  activation(name: string, x: tf.Tensor): tf.Tensor | null;
  /** act(gate)·up (SwiGLU / GeGLU), or null when the activation is not fused. */
  gated(name: string, gate: tf.Tensor, up: tf.Tensor): tf.Tensor | null;
  /** Σ w·(logsumexp(logits) − logits[target]) over rows of logits [N, C]. */
  tokenNll(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar;
  /** One AdamW update of a parameter: new parameter, first and second moments. */
  adamw(
    p: tf.Tensor,
    g: tf.Tensor,
    m: tf.Tensor,
    v: tf.Tensor,
    step: AdamWStep,
  ): [tf.Tensor, tf.Tensor, tf.Tensor];
  /** Σ‖x‖² over the tensors as one scalar, or null where the backend has no kernel for it. */
  squaredSum(xs: tf.Tensor[]): tf.Scalar | null;
}

const providers = new Map<string, FusedOps>();

/** A backend's fused ops, used while that backend is active. */
export function registerFusedOps(backendName: string, ops: FusedOps): void {
  providers.set(backendName, ops);
}

/** Whether a backend's fused ops are used: `STUDIO_FUSED=off` turns them off (to compare with the composed ops). */
export function fusedOpsEnabled(): boolean {
  return process.env.STUDIO_FUSED !== 'off';
}

/** The active backend's fused ops, or null. */
export function fusedOps(): FusedOps | null {
  if (!fusedOpsEnabled()) return null;
  return providers.get(tf.getBackend()) ?? null;
}
