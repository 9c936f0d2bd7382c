import * as tf from '@tensorflow/tfjs-core';
import { type AdapterTensor, TensorTableInstance } from '../instance.ts';

/**
 * An instance whose frozen random tensors are regenerated from a recorded seed at `create` (VeRA's
 * vera_A/vera_B, TinyLoRA's tinylora_P, TLoRA's random_A/random_C): `loadState` accepts a state without
 * them and keeps the regenerated values, so adapter files saved without projections still load.
 * Used by the VeRA, TinyLoRA and TLoRA folders.
 */
export class RegenerableInstance extends TensorTableInstance {
  private regenerable = new Set<string>();

  /** Marks keys that `loadState` may leave out. */
  allowMissing(keys: Iterable<string>): this {
    for (const key of keys) this.regenerable.add(key);
    return this;
  }

  override loadState(state: Record<string, tf.Tensor>): void {
    const filled: Record<string, tf.Tensor> = { ...state };
    const copies: tf.Tensor[] = [];
    for (const t of this.tensors) {
      if (t.key in filled || !this.regenerable.has(t.key)) continue;
      const copy = t.variable.clone();
      copies.push(copy);
      filled[t.key] = copy;
    }
    try {
      super.loadState(filled);
    } finally {
      for (const c of copies) c.dispose();
    }
  }
}

/** A variable holding `value`, which is disposed (tf.variable copies it). */
export function ownedVariable<R extends tf.Rank>(value: tf.Tensor<R>, trainable: boolean): tf.Variable<R> {
  const v = tf.variable(value, trainable);
  value.dispose();
  return v;
}

/** Trainable tensors first in the native state, then the frozen ones (a stable, readable order). */
export function trainableFirst(tensors: AdapterTensor[]): AdapterTensor[] {
  return [...tensors.filter((t) => t.trainable), ...tensors.filter((t) => !t.trainable)];
}
