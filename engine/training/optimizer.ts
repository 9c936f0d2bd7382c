import * as tf from '@tensorflow/tfjs-core';
import type { TrainableParam } from '../adapters/types.ts';
import { fusedOps } from '../backends/fused.ts';

export type ParamGroup = TrainableParam['group'];

export interface GroupSettings {
  lr: number;
  weightDecay: number;
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  groups: Record<ParamGroup, GroupSettings>;
}

/**
 * AdamW with decoupled weight decay, step for step as `torch.optim.AdamW`:
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
 * Each parameter group has its own base learning rate and weight decay; a schedule scales both groups' rates.
 */
export class AdamW {
  /** Optimizer steps taken (PyTorch's `state["step"]`). */
  stepCount = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly params: readonly TrainableParam[],
    readonly options: AdamWOptions,
  ) {
    const seen = new Set<string>();
    for (const p of params) {
      if (seen.has(p.name)) throw new Error(`AdamW: duplicate parameter name "${p.name}"`);
      seen.add(p.name);
      this.m.set(p.name, zerosVariable(p.variable));
      this.v.set(p.name, zerosVariable(p.variable));
    }
  }

  /** The learning rate a group gets at a schedule factor. */
  lr(group: ParamGroup, factor: number): number {
    return this.options.groups[group].lr * factor;
  }

  /**
   * One update from gradients keyed by parameter name, each used as g·gradScale; parameters without a gradient
   * are left alone.
   */
  step(grads: Record<string, tf.Tensor>, lrFactor: number, gradScale = 1): void {
    this.stepCount++;
    const { beta1, beta2, eps } = this.options;
    const t = this.stepCount;
    const bias1 = 1 - beta1 ** t;
    const bias2Sqrt = Math.sqrt(1 - beta2 ** t);
    for (const p of this.params) {
      const g = grads[p.name];
      if (!g) continue;
      const { weightDecay } = this.options.groups[p.group];
      const lr = this.lr(p.group, lrFactor);
      const m = this.m.get(p.name)!;
      const v = this.v.get(p.name)!;
      const fused = fusedOps();
      if (fused) {
        const step = { lr, beta1, beta2, eps, weightDecay, bias1, bias2Sqrt, gradScale };
        const updated = fused.adamw(p.variable, g, m, v, step);
        p.variable.assign(updated[0]);
        m.assign(updated[1]);
        v.assign(updated[2]);
        tf.dispose(updated);
        continue;
      }
      tf.tidy(() => {
        const scaled = gradScale === 1 ? g : tf.mul(g, gradScale);
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(scaled, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(scaled), 1 - beta2));
        const decayed = weightDecay !== 0 ? tf.mul(p.variable, 1 - lr * weightDecay) : p.variable;
        const denom = tf.add(tf.div(tf.sqrt(vNew), bias2Sqrt), eps);
        const update = tf.mul(tf.div(mNew, denom), lr / bias1);
        m.assign(mNew);
        v.assign(vNew);
        p.variable.assign(tf.sub(decayed, update));
      });
    }
  }

  /** Moments under `<param>.exp_avg` / `<param>.exp_avg_sq` (PyTorch's state names) plus the step count. */
  state(): { step: number; tensors: Record<string, tf.Tensor> } {
    const tensors: Record<string, tf.Tensor> = {};
    for (const p of this.params) {
      tensors[`${p.name}.exp_avg`] = this.m.get(p.name)!;
      tensors[`${p.name}.exp_avg_sq`] = this.v.get(p.name)!;
    }
    return { step: this.stepCount, tensors };
  }

  /** Restores `state()` output; a missing key or wrong shape is an error naming the parameter. */
  loadState(state: { step: number; tensors: Record<string, tf.Tensor> }): void {
    for (const p of this.params) {
      for (const [suffix, target] of [
        ['exp_avg', this.m.get(p.name)!],
        ['exp_avg_sq', this.v.get(p.name)!],
      ] as const) {
        const key = `${p.name}.${suffix}`;
        const value = state.tensors[key];
        if (!value) throw new Error(`optimizer state has no "${key}"`);
        if (value.shape.join('x') !== target.shape.join('x')) {
          throw new Error(`optimizer state "${key}" has shape [${value.shape}], expected [${target.shape}]`);
        }
        target.assign(value);
      }
    }
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** A non-trainable zero variable shaped like `like` (tf.variable shares, not owns, its initial tensor). */
function zerosVariable(like: tf.Tensor): tf.Variable {
  const zeros = tf.zerosLike(like);
  const v = tf.variable(zeros, false);
  zeros.dispose();
  return v;
}

/** Σ‖g‖² over every gradient, as a scalar tensor (the global norm squared), left on the backend for one read. */
export function gradSquaredSum(grads: tf.Tensor[]): tf.Scalar {
  if (grads.length === 0) return tf.scalar(0);
  return tf.tidy(
    () => fusedOps()?.squaredSum(grads) ?? (tf.addN(grads.map((g) => tf.sum(tf.square(g)))) as tf.Scalar),
  );
}

/** Scale factor that brings the global norm down to `maxNorm` (PyTorch's `clip_grad_norm_`: maxNorm/(norm+1e-6)). */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}
