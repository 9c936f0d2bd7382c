import * as tf from '@tensorflow/tfjs-core';
import { inferenceContext } from '../models/layers.ts';
import type { Batch, LoadedModel } from '../models/types.ts';

/** What every export reports: how far the reloaded export is from the in-memory adapted model. */
export interface Verification {
  /** max |reloaded − in-memory| over the probe batch's outputs (logits). */
  maxAbsDiff: number;
  /** The bound `maxAbsDiff` was held to (scaled by the output magnitude and the stored dtype). */
  tolerance: number;
  /** max |adapted − base| on the same batch: how much the adapter changes outputs at all. */
  adapterEffect: number;
  ok: boolean;
  /** What was compared, in words. */
  method: string;
}

/**
 * A fixed probe batch: two sequences of seeded token ids; the second has trailing padding so masking is
 * exercised too. Ids avoid nothing special: any id in the vocabulary is a valid input.
 */
export function probeBatch(vocabSize: number, seqLen = 8, seed = 1234): Batch {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % vocabSize;
  };
  const ids = Array.from({ length: 2 * seqLen }, next);
  const mask = Array.from({ length: 2 * seqLen }, (_, i) => (i >= seqLen && i >= 2 * seqLen - 3 ? 0 : 1));
  return {
    inputIds: tf.tensor2d(ids, [2, seqLen], 'int32'),
    attentionMask: tf.tensor2d(mask, [2, seqLen], 'int32'),
  };
}

export function disposeBatch(batch: Batch): void {
  batch.inputIds.dispose();
  batch.attentionMask.dispose();
}

/**
 * Outputs at real (unpadded) positions only, as plain numbers: padded positions of a causal LM are not
 * meaningful and may legitimately differ. Sequence-classification logits are returned whole.
 */
export function probeOutputs(model: LoadedModel, batch: Batch): Float32Array {
  return tf.tidy(() => {
    const out = model.forward(batch, inferenceContext());
    if (out.rank !== 3) return out.dataSync() as Float32Array;
    const [b, t, v] = out.shape;
    const mask = batch.attentionMask.dataSync();
    const data = out.dataSync();
    const kept: number[] = [];
    for (let i = 0; i < b * t; i++) if (mask[i] !== 0) for (let j = 0; j < v; j++) kept.push(data[i * v + j]);
    return Float32Array.from(kept);
  });
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/**
 * Relative tolerance per stored dtype. F32 exports differ from the in-memory model only by summation
 * order; F16/BF16 merged weights are rounded once more after adding ΔW (a relative error up to 2^-11 /
 * 2^-8 per weight), which propagates through the layers.
 */
export const RELATIVE_TOLERANCE: Record<string, number> = { F32: 1e-4, F64: 1e-4, F16: 5e-3, BF16: 4e-2 };

export function toleranceFor(reference: Float32Array, dtype = 'F32'): number {
  return (RELATIVE_TOLERANCE[dtype] ?? 1e-4) * Math.max(1, maxAbs(reference));
}

/**
 * Runs `fn` with exactly one adapter live on every layer (or none), then restores each layer's settings (once
 * the promise settles when `fn` is async).
 */
export function withOnlyAdapter<T>(model: LoadedModel, adapterName: string | null, fn: () => T): T {
  const saved = [...model.layers.values()].map((l) => ({
    l,
    active: l.activeAdapters,
    enabled: l.adaptersEnabled,
  }));
  const restore = () => {
    for (const { l, active, enabled } of saved) {
      l.activeAdapters = active;
      l.adaptersEnabled = enabled;
    }
  };
  for (const { l } of saved) {
    l.activeAdapters = adapterName !== null && l.adapters.has(adapterName) ? [adapterName] : [];
    l.adaptersEnabled = adapterName !== null;
  }
  let result: T;
  try {
    result = fn();
  } catch (error) {
    restore();
    throw error;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
