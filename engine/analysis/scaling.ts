import { getMethod } from '../adapters/registry.ts';
import type { MethodName, ScalingInput as MethodScalingInput } from '../adapters/types.ts';
import type { ScalingFactors, VectorStats } from './types.ts';

export interface ScalingInput extends MethodScalingInput {
  method: MethodName;
}

export function vectorStats(name: string, data: ArrayLike<number>): VectorStats {
  const n = data.length;
  let sum = 0;
  let sumAbs = 0;
  let sumSq = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    sum += v;
    sumAbs += Math.abs(v);
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = n ? sum / n : 0;
  let m2 = 0;
  for (let i = 0; i < n; i++) m2 += (data[i] - mean) ** 2;
  return {
    name,
    length: n,
    mean,
    std: n ? Math.sqrt(m2 / n) : 0,
    min: n ? min : 0,
    max: n ? max : 0,
    meanAbs: n ? sumAbs / n : 0,
    l2: Math.sqrt(sumSq),
  };
}

/** The trainable per-module vectors that scale the update (not biases). */
function moduleVectors(input: ScalingInput): VectorStats[] {
  const out: VectorStats[] = [];
  for (const [name, t] of input.tensors) {
    if (!t.trainable || t.shape.length !== 1 || t.data.length < 2 || /bias/i.test(name)) continue;
    out.push(vectorStats(name, t.data));
  }
  return out;
}

/**
 * Each method's scaling, data-driven: the method's `scaling` hook gives the scalar (fixed from the config or
 * learned from the state) and names model-level vectors; the module's own trainable vectors that scale per
 * feature (DoRA's magnitude, VeRA's λ_b/λ_d) are added here.
 */
export function scalingFactors(input: ScalingInput): ScalingFactors {
  const { scale, kind, formula, sharedVectors, group } = getMethod(input.method).scaling(input);
  const vectors = moduleVectors(input);
  for (const key of sharedVectors ?? []) {
    const t = input.shared.get(key);
    if (t) vectors.push(vectorStats(key, t.data));
  }
  return { scale, kind, formula, vectors, ...(group !== undefined ? { group } : {}) };
}
